"""Pytest plugin, loaded with -p before pytest-django reads the settings.

Test-wide environment: production-like settings (DEBUG off) that need no TLS proxy.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Tests advance runs themselves: an eagerly started run is due at once, not after a grace time.
os.environ.setdefault("DURABLE_EAGER_GRACE_SECONDS", "0")
