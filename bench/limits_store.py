"""What the rate limits' counting costs per request in each store the settings offer: files
(the default without Redis), Django's database cache, Redis. Prints the figures.

    .venv/bin/python -m bench.limits_store [--db sqlite|postgres] [--blocks 6] [--requests 400]

Each request does what DRF's throttles do for `POST /api/buy` (the user rate and the buy rate:
read the user's history, prune it, add this request, write it back), for one of --users users
in turn, through the real DRF throttle classes and the store's Django cache backend. The stores
take turns in short blocks (order rotating), so that a loaded machine's noise falls on all of
them alike; the figures are per request, medians over the blocks. One process: the cost of the
store, not the contention of several web processes (the HTTP benchmark with
BENCH_HTTP_LIMITS=on measures that, with its noise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
REDIS = "redis://127.0.0.1:6379/13"
STORES = ["file", "db", "redis"]


def _configure(db: str, scratch: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="oneclick_project.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-limits-store-not-secret-0123456789abcdefghijklmnop",
        DJANGO_ALLOWED_HOSTS="localhost",
        DJANGO_CACHE_URL=f"file://{scratch}/default-cache",
        DATABASE_URL=(
            f"sqlite:///{scratch}/limits.sqlite3"
            if db == "sqlite"
            else "postgres://postgres@127.0.0.1:5432/oneclick_security_bench"
        ),
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _ensure_postgres_database() -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'oneclick_security_bench'"
        ).fetchone()
        if not found:
            conn.execute("CREATE DATABASE oneclick_security_bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--requests", type=int, default=400, help="requests per block")
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench-limits-")
    _configure(args.db, scratch)
    if args.db == "postgres":
        _ensure_postgres_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.core.management import call_command
    from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

    from bench.lib import machine
    from oneclick_project.settings import cache_from_url

    urls = {"file": f"file://{scratch}/limits", "db": "db://oneclick_limits_bench", "redis": REDIS}
    settings.CACHES = {
        "default": settings.CACHES["default"],
        **{name: cache_from_url(url) for name, url in urls.items()},
    }
    call_command("createcachetable", "oneclick_limits_bench", verbosity=0)
    for name in STORES:
        caches[name].clear()

    view = SimpleNamespace(throttle_scope="buy")
    per_store: dict[str, list[float]] = {name: [] for name in STORES}
    block_medians: dict[str, list[float]] = {name: [] for name in STORES}
    user = 0
    for block in range(args.blocks):
        order = STORES[block % len(STORES) :] + STORES[: block % len(STORES)]
        for name in order:
            store = caches[name]
            timings = []
            for _ in range(args.requests):
                user = (user + 1) % args.users
                request = SimpleNamespace(
                    user=SimpleNamespace(is_authenticated=True, pk=user),
                    META={"REMOTE_ADDR": "127.0.0.1"},
                )
                started = time.perf_counter()
                for throttle_class in (UserRateThrottle, ScopedRateThrottle):
                    throttle = throttle_class()
                    throttle.cache = store
                    if not throttle.allow_request(request, view):
                        raise SystemExit(f"{name}: a request was refused; raise the rates")
                timings.append((time.perf_counter() - started) * 1000)
            per_store[name].extend(timings)
            block_medians[name].append(statistics.median(timings))

    revision, load = machine.git_revision(), machine.load_average()
    print(f"limits store cost, database {args.db}, code {revision}, load {load}")
    print(f"{args.blocks} blocks x {args.requests} requests per store, {args.users} users")
    for name in STORES:
        timings = sorted(per_store[name])
        p99 = timings[int(len(timings) * 0.99) - 1]
        blocks = ", ".join(f"{m:.3f}" for m in block_medians[name])
        print(
            f"  {name:5} per request: median {statistics.median(timings):.3f} ms, "
            f"p99 {p99:.3f} ms, mean {statistics.fmean(timings):.3f} ms; block medians {blocks}"
        )


if __name__ == "__main__":
    main()
