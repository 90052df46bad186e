"""Long chaos run: DESIGN.md §4's invariants with 300 purchases and the processes SIGKILLed.

    python bench/chaos.py                      # SQLite, in a fresh file under bench/out/
    python bench/chaos.py --postgres           # a fresh PostgreSQL database, dropped afterwards
    python bench/chaos.py --purchases 500 --span 150 --kills 15 --seed 42

Each run migrates its own fresh database, so it never touches the development or test databases.
PostgreSQL is reached through DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
only the server is taken from it. Exits 1 if any invariant was broken, after printing why.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="run on PostgreSQL, not SQLite")
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--span", type=float, default=120.0, help="seconds over which buys start")
    parser.add_argument("--kills", type=int, default=12, help="at least this many kill events")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--window", type=float, default=2.0, help="cancel window, seconds")
    parser.add_argument("--workers", type=int, default=2, help="django-q2 workers")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if args.postgres:
        server = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
        name = f"oneclick_chaos_{tag}"
        _admin(server, f'CREATE DATABASE "{name}"')
        url = urlunsplit(server._replace(path=f"/{name}"))
    else:
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        name = str(out / f"chaos_{tag}.sqlite3")
        url = f"sqlite:///{name}"
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="oneclick_project.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", f"chaos-bench-{uuid.uuid4().hex}{uuid.uuid4().hex}")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    try:
        return _run(args)
    finally:
        if not args.keep:
            _drop(args.postgres, name, server if args.postgres else None)


def _run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from devtools.stripe_provider import configured_provider
    from tests.chaos.driver import ChaosConfig, run_chaos

    started = time.time()
    call_command("migrate", verbosity=0)
    print(f"migrated {connection.vendor} database {connection.settings_dict['NAME']}", flush=True)
    config = ChaosConfig(
        purchases=args.purchases,
        users=args.users,
        window_seconds=args.window,
        span_seconds=args.span,
        kills=args.kills,
        q_workers=args.workers,
        scarce_stock=max(3, args.purchases // 30),
        seed=args.seed,
    )
    # Every purchase charges a saved card: a local provider unless one is configured.
    with configured_provider():
        report = run_chaos(config)
    connection.close()
    print(report.summary())
    for violation in report.violations:
        print(f"VIOLATION {violation}")
    print(f"{'FAILED' if report.violations else 'OK'} in {time.time() - started:.0f}s")
    return 1 if report.violations else 0


def _admin(server: SplitResult, sql: str) -> None:
    import psycopg

    dsn = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def _drop(postgres: bool, name: str, server: SplitResult | None) -> None:
    if postgres:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    for suffix in ("", "-wal", "-shm"):
        Path(name + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
