"""Hand runs to django-q2, run them there, and wake the runs that are due."""
