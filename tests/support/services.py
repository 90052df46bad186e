"""Servers some tests need besides the database (Redis): skipped with one line saying so when
missing, or failed when ONECLICK_REQUIRE_SERVICES=1 (CI), where nothing may be skipped."""

from __future__ import annotations

import os

import pytest


def services_required() -> bool:
    """True when a missing server must fail the test instead of skipping it."""
    return os.environ.get("ONECLICK_REQUIRE_SERVICES") == "1"


def require_redis(url: str) -> None:
    """Return if the Redis at `url` answers; otherwise skip the test, or fail it in CI."""
    import redis

    try:
        redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} does not answer ({exc}): start one, e.g. `redis-server`"
        if services_required():
            pytest.fail(f"{message} (required: ONECLICK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
