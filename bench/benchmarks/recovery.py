"""5. Recovery: SIGKILL of the whole django-q2 cluster (os.killpg) with the runs waiting,
then a restart; how long until every run is terminal, and how late against its deadline. Then
a restart of the database under real processes (PostgreSQL only).

Scenario "down past the deadlines": N purchases parked waiting; the cluster is killed before
the first deadline and restarted 1 s after the last one, so every run is overdue at restart.
Scenario "killed mid-burst": the cluster is killed when half the deadlines have passed (runs
leased, tasks taken from the queue), and restarted 2 s later. The poller keeps running in both.
"Delay after restart" = finished_at - max(deadline, restart), the part the engine could avoid.

Scenario "database restarted" (PostgreSQL only): a PostgreSQL cluster of the bench's own (port
5498; the shared server is never restarted) with its own web process, django-q2 cluster and
poller. N purchases are bought through the web process, spread over a few seconds, and parked
waiting; the database is restarted (`pg_ctlcluster restart -m fast`) before the first deadline,
then stopped when a third of the deadlines have passed and started again when two thirds have.
Nothing is restarted but the database. "The database's return" is when a new connection (tried
every 10 ms) first succeeds again, on the database's clock; "delay after restart" =
finished_at - max(deadline, the last return before it), goal at most 2 s. Every run must end
confirmed with its one order, and the web process must answer every purchase's status after.
Where the bench cannot make such a cluster (no root, no postgresql-common) the scenario's goal
figure says "not run" and why.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

from bench.benchmarks import database_restart
from bench.lib import lateness, workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.results import BenchResult
from bench.lib.stats import summary
from devtools.processes import poll_until

STARTER_THREADS = 4


def _statuses(rows: list[workload.RunRow]) -> Counter[str]:
    return Counter(r.status for r in rows)


def _scenario(ctx: BenchContext, name: str, prefix: str, count: int, window: float) -> None:
    from django.utils import timezone

    from purchases.models import Order

    res: BenchResult = ctx.result
    worker = ctx.worker
    keys = [f"{prefix}{i}" for i in range(count)]
    with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=window):
        workload.buy_many(ctx.seed, keys, STARTER_THREADS, window)
    rows = workload.purchases_with_prefix(ctx.seed, prefix)
    deadlines = sorted(r.cancel_until for r in rows)
    parked = poll_until(
        lambda: _statuses(workload.purchases_with_prefix(ctx.seed, prefix))["waiting"] == count,
        max(0.0, (deadlines[0] - timezone.now()).total_seconds() - 0.5),
        0.25,
    )
    if name == "down past the deadlines":
        kill_at, restart_at = deadlines[0] - dt.timedelta(seconds=0.5), deadlines[-1]
        restart_at += dt.timedelta(seconds=1)
    else:
        kill_at = deadlines[len(deadlines) // 2]
        restart_at = kill_at + dt.timedelta(seconds=2)
    time.sleep(max(0.0, (kill_at - timezone.now()).total_seconds()))
    worker.kill()
    at_kill = _statuses(workload.purchases_with_prefix(ctx.seed, prefix))
    res.note(
        f"{name}: {len(rows)} started, all parked before the kill: {parked}; "
        f"at the kill: {dict(at_kill)}, django-q2 queue {workload.queue_depth()}"
    )
    res.add(f"{name}: runs leased by the killed workers", "runs", at_kill.get("running", 0))
    time.sleep(max(0.0, (restart_at - timezone.now()).total_seconds()))
    restarted = timezone.now()
    began = time.monotonic()
    ctx.worker = ctx.start_worker()
    left = workload.wait_finished([r.run_id for r in rows], ctx.size(180, 120), 0.1)
    res.add(f"{name}: restart (process start) -> all terminal", "s", time.monotonic() - began)
    if left:
        res.note(f"{name}: {len(left)} runs unfinished at the time limit")
    final = workload.purchases_with_prefix(ctx.seed, prefix)
    lateness.record(res, name, final, count, goal=False)
    delays = [
        (r.finished_at - max(r.cancel_until, restarted)).total_seconds() * 1000
        for r in final
        if r.finished_at is not None
    ]
    stats = summary(delays)
    res.add(f"{name}: delay after restart p50", "ms", stats["p50"])
    res.add(f"{name}: delay after restart p99", "ms", stats["p99"])
    res.add(f"{name}: delay after restart max", "ms", stats["max"])
    confirmed = sum(1 for r in final if r.state == "PURCHASE_CONFIRMED")
    orders = Order.objects.filter(purchase__key__startswith=prefix).count()
    res.add(
        f"{name}: orders minus confirmed purchases (exactly once)",
        "orders",
        orders - confirmed,
        goal="0",
        goal_min=0,
        goal_max=0,
    )


def run(ctx: BenchContext) -> None:
    count = ctx.size(1000, 200)
    window = float(ctx.size(40, 12))
    ctx.result.settings["runs per scenario"] = f"{count}, window {window:g} s"
    ctx.start_poller()
    ctx.worker = ctx.start_worker()
    for n in range(ctx.rounds):
        _scenario(ctx, "down past the deadlines", f"rp{n}-", count, window)
        _scenario(ctx, "killed mid-burst", f"rb{n}-", count, window)
    ctx.kill_all()  # idle now; the database restart brings processes of its own
    database_restart.run(ctx)
