"""The rate limits' counts survive traffic (issue 29, item 2): with more distinct clients than
the cache's maximum entries, no live lockout or count is dropped to make room, in each store
the settings offer (files, the database, Redis); expired counts are still swept."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.throttling import SimpleRateThrottle

from oneclick_project.settings import cache_from_url
from tests.purchases.sign_ins import basic
from tests.support.manage import run_manage

pytestmark = pytest.mark.django_db(transaction=True)

MAX_ENTRIES = 20
CLIENTS = 3 * MAX_ENTRIES
REDIS = "redis://127.0.0.1:6379/14"


@pytest.fixture(params=["file", "db", "redis"])
def small_store(request, settings, tmp_path) -> Iterator[str]:
    """The default cache as the settings make it from DJANGO_CACHE_URL, its maximum lowered
    below the number of clients."""
    url = {"file": f"file://{tmp_path}", "db": "db://oneclick_limits", "redis": REDIS}
    config: dict[str, Any] = cache_from_url(url[request.param])
    if request.param != "redis":  # Redis has no maximum of its own (its OPTIONS go to redis-py)
        config["OPTIONS"]["MAX_ENTRIES"] = MAX_ENTRIES
    # Keys of this test only: the Redis server is shared (never cleared here).
    config["KEY_PREFIX"] = f"limits-test-{uuid.uuid4().hex}"
    if request.param == "redis":
        redis = pytest.importorskip("redis")
        try:
            redis.from_url(REDIS).ping()
        except redis.ConnectionError:
            pytest.skip(f"no Redis at {REDIS}")
    settings.CACHES = {"default": config}
    if request.param == "db":
        call_command("createcachetable", verbosity=0)
    yield request.param
    if request.param == "redis":
        client = redis.from_url(REDIS)
        for key in client.scan_iter(match=f"{config['KEY_PREFIX']}*"):
            client.delete(key)


def test_no_live_lockout_or_count_is_culled(small_store, make_user, settings):
    settings.PASSWORD_HASHERS = ["tests.purchases.sign_ins.CountingHasher"]
    make_user("alice", "pw-alice-123")
    limit = int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])
    for n in range(limit):
        Client().get("/api/purchases/", **basic("alice", f"guess-{n}", "203.0.113.50"))
    # Many other clients, each leaving counts behind: a failed sign-in and an anonymous request.
    for n in range(CLIENTS):
        address = f"198.51.{n // 250}.{n % 250 + 1}"
        Client().get("/api/purchases/", **basic("alice", "wrong", address))
        Client(REMOTE_ADDR=address).get("/api/")
    refused = Client().get("/api/purchases/", **basic("alice", "pw-alice-123", "203.0.113.50"))
    assert refused.status_code == 429, "the lockout was dropped to make room"
    kept = [
        n
        for n in range(CLIENTS)
        if cache.get(f"throttle_auth_failure_198.51.{n // 250}.{n % 250 + 1}")
        and cache.get(f"throttle_anon_198.51.{n // 250}.{n % 250 + 1}")
    ]
    assert len(kept) == CLIENTS, f"{CLIENTS - len(kept)} clients' counts were dropped"


@pytest.mark.parametrize("scheme", ["file", "db"])
def test_expired_counts_are_swept_past_the_maximum(scheme, settings, tmp_path, monkeypatch):
    url = f"file://{tmp_path}" if scheme == "file" else "db://oneclick_limits_sweep"
    config: dict[str, Any] = cache_from_url(url)
    config["OPTIONS"]["MAX_ENTRIES"] = MAX_ENTRIES
    settings.CACHES = {"default": config}
    if scheme == "db":
        call_command("createcachetable", verbosity=0)
    from oneclick_project.limits_cache import FileCacheKeepingLiveEntries

    monkeypatch.setattr(FileCacheKeepingLiveEntries, "SWEEP_SECONDS", 0.0)
    for n in range(MAX_ENTRIES):
        cache.set(f"short-{n}", n, 1)
    cache.set("long", "kept", 600)
    deadline = time.monotonic() + 60
    while cache.get("short-0", "gone") != "gone" and time.monotonic() < deadline:
        time.sleep(0.1)  # a condition, not a margin: until the short entries have expired
    cache.set("trigger", 1, 600)  # a set past the maximum sweeps
    assert cache.get("long") == "kept"
    assert all(cache.get(f"short-{n}", "gone") == "gone" for n in range(MAX_ENTRIES))
    if scheme == "file":
        assert len(list(tmp_path.glob("*.djcache"))) == 2, "expired files were left behind"


@pytest.mark.parametrize(
    ("cache_url", "backend"),
    [("redis://127.0.0.1:6379/3", "RedisCache"), ("", "FileCacheKeepingLiveEntries")],
)
def test_the_counts_go_to_redis_only_when_the_cache_url_names_it(cache_url: str, backend: str):
    # Never the broker's REDIS_URL by default: clearing the cache would flush the task queue.
    result = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.CACHES['default'])",
        env_overrides={"DJANGO_DEBUG": "true", "DJANGO_CACHE_URL": cache_url,
                       "REDIS_URL": "redis://127.0.0.1:6379/2"},
    )  # fmt: skip
    default = result.stdout.strip().splitlines()[-1]
    assert backend in default and "6379/2" not in default, result.stderr
