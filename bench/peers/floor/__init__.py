"""The framework floor: a tiny Django project (not the app) whose DRF views, with the app's token
authentication, insert one row in one transaction (buy) and read it back (status). Served by
gunicorn with the app's web settings, it is what any Django + DRF JSON endpoint costs here."""
