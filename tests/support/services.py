"""What some tests need from the machine (a program, root, a Redis server): skipped with one
line saying so where it is missing, except in CI (ONECLICK_REQUIRE_SERVICES=1), where a missing
one fails the test instead."""

from __future__ import annotations

import os
import shutil

import pytest


def _missing(what: str) -> None:
    if os.environ.get("ONECLICK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} (required: ONECLICK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(what)


def require_program(name: str, package: str) -> str:
    """The path of program `name`; skips (fails in CI) when it is not installed."""
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin:/sbin")
    if path is None:
        _missing(f"{name} is not installed (apt-get install -y {package})")
    return path


def require_root(why: str) -> None:
    """Skips (fails in CI) unless this process runs as root."""
    if os.geteuid() != 0:
        _missing(f"needs root: {why}")


def require_redis(url: str) -> None:
    """Returns if the Redis at `url` answers; skips (fails in CI) otherwise."""
    import redis

    try:
        redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        _missing(f"Redis at {url} does not answer ({exc}): start one, e.g. `redis-server`")
