"""Pytest plugin, loaded with -p before pytest-django reads the settings.

Test-wide environment: production-like settings (DEBUG off) that need no TLS proxy.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Nothing else: eager start, its grace time and the engine's timers keep their production defaults.
