"""Benchmark 5's third scenario, "database restarted" (PostgreSQL only), on a PostgreSQL cluster
made for it (devtools/pgcluster.py) and dropped after it: the shared server is never restarted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter

from bench.lib import lateness, workload
from bench.lib.context import BenchContext, Seed, seed
from bench.lib.database import BenchDatabase, bench_process_on
from bench.lib.httpload import Client, Request, run_load
from bench.lib.stats import summary
from devtools.pgcluster import PrivateCluster, ReturnWatch, delay_after_return, unavailable
from devtools.processes import poll_until

NAME = "database restarted"
# Its own port: tests/ops/test_database_restart.py's cluster is on 5499.
CLUSTER = PrivateCluster("oneclick_bench_restart", 5498)
DATABASE = "bench_recovery_restart"
RECOVERY_GOAL = {
    "goal": "<= 2000 (within 2 s of max(deadline, the database's return))",
    "goal_max": 2000.0,
}


def run(ctx: BenchContext) -> None:
    """The scenario's rounds, with a web process, a django-q2 cluster and a poller of their own
    on the private cluster, which is dropped afterwards whatever happened. Where no such cluster
    can be made (SQLite, no root, no postgresql-common) the goal's figure says why it was not
    run."""
    why = "PostgreSQL only" if ctx.db.vendor != "postgres" else unavailable()
    if why:
        ctx.result.not_run(f"{NAME}: delay after restart max", "ms", why, **RECOVERY_GOAL)
        return
    CLUSTER.drop()  # one left behind by a bench that was killed before it could drop it
    CLUSTER.create()
    try:
        CLUSTER.start()
        url = CLUSTER.create_database(DATABASE)
        count, spread = ctx.size(200, 60), float(ctx.size(10, 4))
        window = spread + ctx.size(10, 6)
        env = {
            **ctx.env,
            "DATABASE_URL": url,
            "Q_CLUSTER_NAME": f"{ctx.env['Q_CLUSTER_NAME']}-restart",
            "ONECLICK_CANCEL_WINDOW_SECONDS": f"{window:g}",
        }
        log_dir = ctx.log_dir / "restart"
        log_dir.mkdir(parents=True, exist_ok=True)
        database = BenchDatabase("postgres", DATABASE, url)
        database.migrate(env, log_dir / "migrate.log")
        ctx.result.settings[NAME] = (
            f"{count} runs a round, bought over {spread:g} s through the web process, window "
            f"{window:g} s; cluster {CLUSTER.name}, PostgreSQL {CLUSTER.version} with its "
            f"default settings, port {CLUSTER.port}"
        )
        with bench_process_on(url):
            # replace() keeps the same `_started` list: child.py's kill_all reaches these too.
            mine = dataclasses.replace(
                ctx, db=database, env=env, seed=seed(), log_dir=log_dir, worker=None
            )
            try:
                mine.start_poller()
                mine.start_worker()
                _, port = mine.start_web()
                # Every gunicorn worker and thread connected before the first round.
                run_load(
                    port, [Request("GET", "/api/status/none")] * 16, 4, mine.seed.token_header, 60
                )
                for n in range(ctx.rounds):
                    _round(mine, port, f"rr{n}-", count, spread)
            finally:
                mine.kill_all()
    finally:
        CLUSTER.drop()


def _round(ctx: BenchContext, port: int, prefix: str, count: int, spread: float) -> None:
    """Buy `count` purchases, restart the database while they all wait, then keep it down from
    the moment a third of their deadlines have passed to the moment two thirds have."""
    from django.db import connections

    res = ctx.result
    keys = [f"{prefix}{i}" for i in range(count)]
    bought = _buy_paced(port, ctx.seed, keys, spread)
    rows = workload.purchases_with_prefix(ctx.seed, prefix)
    deadlines = sorted(r.cancel_until for r in rows)

    def all_waiting() -> bool:
        runs = workload.purchases_with_prefix(ctx.seed, prefix)
        return all(r.status == "waiting" for r in runs)

    parked = poll_until(all_waiting, 10, 0.1)
    connections.close_all()  # this process's connection would not outlive the restart
    watch = ReturnWatch(ctx.db.url)
    watch.start()
    CLUSTER.restart()
    returns = [watch.result()]
    res.note(
        f"{NAME}: buys answered {dict(bought)}, all parked before the restart: {parked}; "
        f"back {(deadlines[0] - returns[0]).total_seconds():.1f} s before the first deadline"
    )
    _sleep_until(deadlines[len(deadlines) // 3])
    watch = ReturnWatch(ctx.db.url)
    watch.start()
    stopped = time.monotonic()
    CLUSTER.stop()
    _sleep_until(deadlines[2 * len(deadlines) // 3])
    CLUSTER.start()
    returns.append(watch.result())
    res.add(f"{NAME}: database down across deadlines", "s", time.monotonic() - stopped)

    left = workload.wait_finished([r.run_id for r in rows], ctx.size(120, 60), 0.1)
    if left:
        res.note(f"{NAME}: {len(left)} runs unfinished at the time limit")
    final = workload.purchases_with_prefix(ctx.seed, prefix)
    lateness.record(res, NAME, final, count, goal=False)
    finished = [r for r in final if r.finished_at is not None]
    res.add(
        f"{NAME}: runs overdue at the database's return",
        "runs",
        sum(1 for r in finished if r.cancel_until < returns[1] <= r.finished_at),
    )
    delays = [
        delay_after_return(r.finished_at, r.cancel_until, returns).total_seconds() * 1000
        for r in finished
    ]
    stats = summary(delays)
    for key in ("p50", "p95", "p99"):
        res.add(f"{NAME}: delay after restart {key}", "ms", stats[key])
    res.add(f"{NAME}: delay after restart max", "ms", stats["max"], **RECOVERY_GOAL)
    _record_outcomes(ctx, port, prefix, keys, final)


def _record_outcomes(
    ctx: BenchContext, port: int, prefix: str, keys: list[str], final: list[workload.RunRow]
) -> None:
    """How the runs ended: all confirmed, each with its one order and no other order; and the
    web process answering for every purchase after the restarts."""
    from purchases.models import Order
    from purchases.states import CONFIRMED

    res = ctx.result
    count = len(keys)
    confirmed = sum(1 for r in final if r.state == CONFIRMED)
    res.add(
        f"{NAME}: runs confirmed", "runs", confirmed, f"all {count}", goal_min=count, goal_max=count
    )
    ordered = set(
        Order.objects.filter(purchase__key__startswith=prefix).values_list(
            "purchase__run_id", flat=True
        )
    )
    res.add(
        f"{NAME}: purchases whose orders do not match (one if confirmed, else none)",
        "purchases",
        sum(1 for r in final if (r.state == CONFIRMED) != (r.run_id in ordered)),
        goal="0",
        goal_min=0,
        goal_max=0,
    )
    load = run_load(
        port, [Request("GET", f"/api/status/{k}") for k in keys], 4, ctx.seed.token_header, 60
    )
    res.add(
        f"{NAME}: web status requests not answered 200 after the restarts",
        "requests",
        count - load.statuses[200],
        goal="0",
        goal_min=0,
        goal_max=0,
    )
    if load.errors or set(load.statuses) - {200}:
        res.note(f"{NAME}: status requests {dict(load.statuses)}, errors {dict(load.errors)}")


def _buy_paced(port: int, buyer: Seed, keys: list[str], spread: float) -> Counter[int]:
    """POST /api/buy for each key, one at a time, the i-th not before i * spread / len(keys)
    seconds (so the deadlines spread over `spread` seconds at least); returns the statuses."""
    client = Client(port, buyer.token_header)
    body = {"item_id": buyer.item_id}
    statuses: Counter[int] = Counter()
    began = time.monotonic()
    try:
        for i, key in enumerate(keys):
            time.sleep(max(0.0, began + i * spread / len(keys) - time.monotonic()))
            status, _ = client.send(Request("POST", f"/api/buy/{key}", body))
            statuses[status] += 1
    finally:
        client.close()
    return statuses


def _sleep_until(moment: dt.datetime) -> None:
    from django.utils import timezone

    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))
