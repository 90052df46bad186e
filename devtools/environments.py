"""The environment of the project's processes that tests and benchmarks start: the running
interpreter's virtualenv first on PATH, production-like settings, and the switches a load test
needs that a customer never gets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# A few clients buy at machine speed in tests and benchmarks: the rate limits and the cap on
# pending purchases are not what they measure or check.
NO_RATE_LIMITS = {
    "ONECLICK_THROTTLE_USER": "off",
    "ONECLICK_THROTTLE_BUY": "off",
    "ONECLICK_THROTTLE_CANCEL": "off",
    "ONECLICK_MAX_PENDING_PURCHASES": "0",
}

# Timers short enough that a test or a chaos run sees a lease expire or a run redelivered in
# seconds (production's are minutes).
FAST_TIMERS = {
    "DURABLE_LEASE_SECONDS": "3",
    "DURABLE_POLL_INTERVAL_SECONDS": "0.05",
    "DURABLE_REDELIVER_AFTER_SECONDS": "5",
}


def venv_path() -> str:
    """PATH with the running interpreter's bin directory first, so that `bin/web` finds this
    virtualenv's gunicorn whoever started the caller."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment with `venv_path()` as PATH and unbuffered output (a child's
    log is complete up to the moment it is killed), then `overrides`."""
    return {**os.environ, "PATH": venv_path(), "PYTHONUNBUFFERED": "1", **overrides}


def production_env(database_url: str, **overrides: str) -> dict[str, str]:
    """`child_env` for the project's own processes as deployed: DEBUG off (so bin/web runs
    gunicorn), no HTTPS redirect (the callers speak plain HTTP on 127.0.0.1), on the database
    `database_url`; then `overrides`."""
    settings = {
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
    }
    return child_env(**{**settings, **overrides})
