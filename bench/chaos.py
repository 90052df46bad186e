"""Long chaos run: DESIGN.md §4's invariants with 300 purchases and the processes SIGKILLed.

    python bench/chaos.py                      # SQLite, in a fresh file in a temporary folder
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import databases  # noqa: E402 - after the project is on the path
from devtools.environments import FAST_TIMERS, production_env  # noqa: E402


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

    vendor = "postgres" if args.postgres else "sqlite"
    server = os.environ.get("DATABASE_URL", databases.SERVER_URL)
    name = f"oneclick_chaos_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with databases.fresh_database(vendor, name, server, keep=args.keep) as url:
        if args.keep:
            print(f"the database is kept: {url}", flush=True)
        os.environ.update(
            production_env(
                url,
                DJANGO_SETTINGS_MODULE="oneclick_project.settings",
                DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            )
        )
        os.environ.setdefault("DJANGO_SECRET_KEY", f"chaos-bench-{uuid.uuid4().hex * 2}")
        os.chdir(ROOT)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from devtools.chaos.driver import ChaosConfig, run_chaos
    from devtools.stripe_provider import configured_provider

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
    # Every purchase charges a saved card: a local provider unless one is configured (its
    # settings reach the children's environment).
    with configured_provider():
        report = run_chaos(config, production_env(os.environ["DATABASE_URL"], **FAST_TIMERS))
    connection.close()
    print(report.summary())
    for violation in report.violations:
        print(f"VIOLATION {violation}")
    print(f"{'FAILED' if report.violations else 'OK'} in {time.time() - started:.0f}s")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
