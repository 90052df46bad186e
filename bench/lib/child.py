"""Runs ONE benchmark on ONE database in this process, then exits.

`run_all.py` starts this module once per (benchmark, database) because Django's settings (the
database above all) are fixed per process: `python -m bench.lib.child --bench NAME --db sqlite
--out result.json [--quick] [--rounds N]`. It creates the database, migrates it, seeds it, runs
the benchmark (which starts the Procfile's processes), kills every process group it started,
drops the database and writes the result as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import time
import traceback
from pathlib import Path

from bench.lib.context import BenchContext, bench_env, seed, setup_django
from bench.lib.database import fresh_database
from bench.lib.results import BenchResult
from devtools.stripe_provider import configured_provider

BENCHMARKS = {
    "throughput": ("bench.benchmarks.throughput", "1. Engine throughput (zero window)"),
    "statements": ("bench.benchmarks.statements", "1b. Statements and commits per workflow"),
    "waiting": ("bench.benchmarks.waiting", "2. Many purchases waiting at once"),
    "signal": ("bench.benchmarks.signal_latency", "3. Cancel (workflow signal) latency"),
    "http": ("bench.benchmarks.http_api", "4. HTTP API through gunicorn"),
    "recovery": ("bench.benchmarks.recovery", "5. Recovery after kill -9 and a database restart"),
    "profile": ("bench.benchmarks.profile", "Profile of one workflow in the worker path"),
    "dbos": ("bench.benchmarks.peer_dbos", "6. The engine against DBOS, same run"),
    "httppeers": ("bench.benchmarks.peer_http", "7. The HTTP API against its peers, same run"),
    "slowsteps": ("bench.benchmarks.slow_steps", "8. Slow outside calls: plain steps in flight"),
}


def effective_settings(vendor: str) -> dict[str, object]:
    """The settings every process of the benchmark runs with, read back from Django."""
    from django.conf import settings

    q = settings.Q_CLUSTER
    return {
        "database": f"{vendor} ({settings.DATABASES['default']['ENGINE']})",
        "CONN_MAX_AGE": settings.DATABASES["default"].get("CONN_MAX_AGE"),
        "django-q2": f"workers={q['workers']} poll={q['poll']}s broker="
        + ("redis" if "redis" in q else f"orm:{q.get('orm')}"),
        "DURABLE": dict(settings.DURABLE),
        "web": f"bin/web = gunicorn, WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', '2')}"
        f" WEB_THREADS={os.environ.get('WEB_THREADS', '4')}",
        "DEBUG": settings.DEBUG,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--db", required=True, choices=["sqlite", "postgres"])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args()

    module_name, title = BENCHMARKS[args.bench]
    result = BenchResult(args.bench, args.db, title)
    log_dir = args.log_dir / f"{args.bench}-{args.db}"
    log_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    print(
        f"== {title} on {args.db} ({'quick' if args.quick else 'full'}, "
        f"{args.rounds} round(s)); logs in {log_dir}",
        flush=True,
    )
    with fresh_database(args.db, args.bench) as database, contextlib.ExitStack() as provider:
        cluster = f"bench-{args.bench}-{args.db}-{os.getpid()}"
        env = bench_env(database.url, cluster)
        migrate_seconds = database.migrate(env, log_dir / "migrate.log")
        setup_django(env)
        # Every purchase charges a saved card: a local provider unless one is configured.
        provider.enter_context(configured_provider())
        env.update({name: os.environ[name] for name in ("STRIPE_API_KEY", "STRIPE_API_BASE")})
        ctx = BenchContext(database, env, seed(), result, log_dir, args.quick, args.rounds)
        result.settings.update(effective_settings(args.db))
        result.settings["migrate seconds"] = round(migrate_seconds, 1)
        try:
            module = importlib.import_module(module_name)
            result.description = inspect.cleandoc(module.__doc__ or "")
            module.run(ctx)
        except Exception:
            result.error = traceback.format_exc()
            print(result.error, flush=True)
        finally:
            ctx.kill_all()
            from django.db import connections

            connections.close_all()
    result.seconds = time.monotonic() - began
    result.save(args.out)
    print(f"== {args.bench}/{args.db} done in {result.seconds:.0f} s", flush=True)
    return 1 if result.error else 0


if __name__ == "__main__":
    raise SystemExit(main())
