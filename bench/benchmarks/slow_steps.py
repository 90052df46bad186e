"""8. Slow outside calls: N runs, each of one plain step that waits 0, 50 or 200 ms (the way a
payment provider's answer does: `time.sleep`, so the GIL is free), all started at once, as fast
as one thread of this process starts them (each `durable.start` in its own transaction), and
run by the real django-q2 cluster (Q_WORKERS=2, the default DURABLE_STEPS_IN_FLIGHT) with the
poller beside it. DBOS Transact 3.4 runs the same workflow (an `@DBOS.step` sleeping as long)
in a process of its own (bench/peers/dbos_driver.py), started with `DBOS.start_workflow` as fast
as one thread of it starts them, in the same run: for each latency, our round then DBOS's.
(Eight starting threads on each side, tried on 2026-12-07, measured the starters' contention
for the interpreter more than either engine: our 200 ms rate fell from 198 to 72-93 runs/s.)

Per round: runs/s = N / (last run's end - the start of the batch); end-to-end latency of each
run = its end - the start of the batch (so it counts the batch's start, on both sides; our end
is the run's finished_at, DBOS's the time its workflow returned, both on this machine's clock);
peak RSS of each process (ours: every process of the cluster and the poller, sampled every
0.25 s; DBOS: its driver process, which holds its workflows' threads); peak database
connections (PostgreSQL: pg_stat_activity of the benchmark's database, the bench process's
own excluded; SQLite: open descriptors of the database file in the cluster's and poller's
processes; both sampled every 0.25 s during our rounds; DBOS: of its two databases, counted as
each of its rounds ends, its pools still holding them).

Then, in each round, the same cluster restarted with the step pool off
(DURABLE_STEPS_IN_FLIGHT=0: each call inside its task, one per worker process, as before issue
27): N runs with no wait, and a few with a 200 ms step; the cluster is restarted with the pool
on for the next round. Each side starts with 20 unmeasured runs, and so does each restart.

Goals (issue #27), judged on the medians over rounds of per-round ratios: with a 200 ms step,
our runs/s >= 0.7 x our own rate with no wait in the same round; >= 1.5 x DBOS's rate on the
same workload; peak RSS per worker process <= 150 MiB at the default limit; with no wait,
no slower with the pool than without it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.lib import peers, workload
from bench.lib.context import BenchContext
from bench.lib.database import pg_admin
from bench.lib.results import Table
from bench.lib.stats import fmt, median, summary

LATENCIES = (0.0, 0.05, 0.2)
STARTERS = 1
WARM_UP = 20  # runs started and finished, unmeasured, by a process before it is measured
ROUND_TIME_LIMIT = 600.0
WORKER_RSS_GOAL_MIB = 150.0


def _label(seconds: float) -> str:
    return "no wait" if seconds == 0 else f"{seconds * 1000:.0f} ms step"


def _ours(
    ctx: BenchContext, prefix: str, count: int, seconds: float, side: str = ""
) -> dict[str, Any]:

    import durable
    from durable.models import WorkflowRun

    run_ids = [f"{prefix}-{i}" for i in range(count)]
    began = time.time()
    _in_threads(run_ids, lambda run_id: durable.start(run_id, "bench_slow_step", seconds))
    if side:
        ctx.result.add(f"{side}, {_label(seconds)}: starting all", "s", time.time() - began)
    left = workload.wait_finished(run_ids, ROUND_TIME_LIMIT, interval=0.05)
    rows = WorkflowRun.objects.filter(pk__in=run_ids).values_list("status", "finished_at")
    ended = [finished.timestamp() for status, finished in rows if status == "succeeded"]
    if left or len(ended) < count:
        ctx.result.note(f"ours {prefix}: {len(ended)}/{count} succeeded, {len(left)} unfinished")
    return {"began": began, "ended": ended}


def _in_threads(keys: list[str], start: Any) -> None:
    """`start(key)` for every key, from STARTERS threads (each its own connection)."""
    from django.db import connection

    def starter(share: list[str]) -> None:
        try:
            for key in share:
                start(key)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=starter, args=(keys[n::STARTERS],), name=f"starter-{n}")
        for n in range(STARTERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _figures(ctx: BenchContext, side: str, seconds: float, answer: dict[str, Any]) -> float:
    began, ended = answer["began"], answer["ended"]
    if not ended:
        return float("nan")
    rate = len(ended) / (max(ended) - began)
    latency = summary([(end - began) * 1000 for end in ended])
    label = f"{side}, {_label(seconds)}"
    ctx.result.add(f"{label}: runs/s", "runs/s", rate)
    ctx.result.add(f"{label}: end-to-end p50", "ms", latency["p50"])
    ctx.result.add(f"{label}: end-to-end p99", "ms", latency["p99"])
    return rate


def _our_connections(ctx: BenchContext, cluster: list[Any]) -> Any:
    """A function counting the database connections of the cluster and poller now."""
    if ctx.db.vendor == "postgres":
        from django.db import connection

        connection.ensure_connection()
        own = connection.connection.info.backend_pid
        admin = pg_admin()

        def count() -> dict[str, int]:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [ctx.db.name, own],
            ).fetchone()
            return {"connections": int(row[0])}

        return count
    database = str(ctx.db.path.resolve()) if ctx.db.path else ""

    def count_files() -> dict[str, int]:
        pids = [pid for process in cluster for pid in process.group_pids()]
        return {"connections": _open_files(pids, database)}

    return count_files


def _open_files(pids: list[int], path: str) -> int:
    """Descriptors of `path` (an SQLite database file) open in the processes `pids`."""
    opened = 0
    for pid in pids:
        try:
            entries = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for entry in entries:
            try:
                if os.readlink(f"/proc/{pid}/fd/{entry}") == path:
                    opened += 1
            except OSError:
                continue
    return opened


def _dbos_connections(ctx: BenchContext, databases: peers.PeerDatabases, pid: int) -> int:
    """The DBOS driver's database connections now."""
    if ctx.db.vendor == "postgres":
        names = [url.rsplit("/", 1)[1] for url in (databases.app_url, databases.sys_url)]
        row = (
            pg_admin()
            .execute("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", [names])
            .fetchone()
        )
        return int(row[0])
    paths = [
        str(Path(url.split("///", 1)[1]).resolve())
        for url in (databases.app_url, databases.sys_url)
    ]
    return sum(_open_files([pid], path) for path in paths)


def run(ctx: BenchContext) -> None:
    from django.conf import settings

    import bench.workflows  # noqa: F401 - registers the workflow in this process

    count = ctx.size(300, 40)
    res = ctx.result
    limit = settings.DURABLE.get("STEPS_IN_FLIGHT")
    res.note(f"N = {count} runs per round; DURABLE_STEPS_IN_FLIGHT = {limit} per worker process")
    modules = {"DURABLE_WORKFLOW_MODULES": "bench.workflows"}
    cluster = [ctx.start_worker(**modules), ctx.start_poller(**modules)]
    count_off = ctx.size(40, 10)  # a 200 ms step one at a time per process is slow
    rates: dict[tuple[str, float], list[float]] = {}
    memory_peak: dict[str, int] = {}
    connections_peak = {"ours": 0, "DBOS": 0}
    dbos_rss_peak = 0
    count_ours = _our_connections(ctx, cluster)
    with (
        peers.peer_databases(ctx.db.vendor, "slowsteps") as databases,
        peers.DbosDriver(databases, ctx.log_dir) as driver,
    ):
        # Not measured: the first runs of a process pay its imports and connections.
        _ours(ctx, "warm-r0", WARM_UP, 0.0)
        driver.ask("slowsteps", "dbos-warm", WARM_UP, 0.0, STARTERS)
        for n in range(ctx.rounds):
            for seconds in LATENCIES:
                prefix = f"r{n}-{int(seconds * 1000)}"
                with workload.Sampler(cluster, interval=0.25, extra=count_ours) as sampler:
                    answer = _ours(ctx, f"ours-{prefix}", count, seconds, "ours")
                for label, (rss, _pss) in sampler.memory_max.items():
                    memory_peak[label] = max(memory_peak.get(label, 0), rss)
                connections_peak["ours"] = max(
                    connections_peak["ours"], sampler.max_extra("connections")
                )
                rates.setdefault(("ours", seconds), []).append(
                    _figures(ctx, "ours", seconds, answer)
                )
                dbos = driver.ask("slowsteps", f"dbos-{prefix}", count, seconds, STARTERS)
                res.add(f"DBOS, {_label(seconds)}: starting all", "s", dbos["start_seconds"])
                connections_peak["DBOS"] = max(
                    connections_peak["DBOS"], _dbos_connections(ctx, databases, driver.pid)
                )
                if dbos.get("failure_count"):
                    res.note(f"DBOS {prefix}: {dbos['failure_count']} failed: {dbos['failures']}")
                dbos_rss_peak = max(dbos_rss_peak, int(dbos.get("rss_kib_peak", 0)))
                rates.setdefault(("DBOS", seconds), []).append(_figures(ctx, "DBOS", seconds, dbos))
            # The same cluster with the step pool off (DURABLE_STEPS_IN_FLIGHT=0: each call runs
            # inside its task, one per worker process, as before issue 27), for comparison.
            cluster[0].kill()
            cluster[0] = ctx.start_worker(**modules, DURABLE_STEPS_IN_FLIGHT="0")
            _ours(ctx, f"warm-off-r{n}", WARM_UP, 0.0)
            for seconds, runs in ((0.0, count), (0.2, count_off)):
                answer = _ours(ctx, f"off-r{n}-{int(seconds * 1000)}", runs, seconds)
                rates.setdefault(("pool off", seconds), []).append(
                    _figures(ctx, f"ours, pool off ({runs} runs)", seconds, answer)
                )
            cluster[0].kill()
            cluster[0] = ctx.start_worker(**modules)
            _ours(ctx, f"warm-r{n + 1}", WARM_UP, 0.0)
            ours_no_wait = rates[("ours", 0.0)][-1]
            res.add(
                "ours, no wait: pool on / pool off, runs/s",
                "x",
                ours_no_wait / rates[("pool off", 0.0)][-1],
                goal=">= 1 (no regression)",
                goal_min=1.0,
            )
            res.add(
                "ours: 200 ms step / no wait, runs/s",
                "x",
                rates[("ours", 0.2)][-1] / ours_no_wait,
                goal=">= 0.7",
                goal_min=0.7,
            )
            for seconds in LATENCIES:
                res.add(
                    f"ours / DBOS, {_label(seconds)}, runs/s",
                    "x",
                    rates[("ours", seconds)][-1] / rates[("DBOS", seconds)][-1],
                    goal=">= 1.5",
                    goal_min=1.5,
                )
    workers = {label: kib for label, kib in memory_peak.items() if "qcluster worker" in label}
    for label, kib in sorted(workers.items()):
        res.add(
            f"peak RSS, {label}",
            "MiB",
            kib / 1024,
            goal=f"<= {WORKER_RSS_GOAL_MIB:g}",
            goal_max=WORKER_RSS_GOAL_MIB,
        )
    table = Table(
        "Peak memory and connections over all rounds",
        ["process", "peak RSS (MiB)", "peak database connections"],
    )
    for label, kib in sorted(memory_peak.items()):
        table.rows.append([label, fmt(kib / 1024), ""])
    table.rows.append(["ours: cluster and poller, all", "", str(connections_peak["ours"])])
    table.rows.append(["DBOS driver", fmt(dbos_rss_peak / 1024), str(connections_peak["DBOS"])])
    res.tables.append(table)
    medians = Table("Runs/s, median over rounds", ["latency", "ours", "DBOS"])
    for seconds in LATENCIES:
        medians.rows.append(
            [
                _label(seconds),
                fmt(median(rates[("ours", seconds)])),
                fmt(median(rates[("DBOS", seconds)])),
            ]
        )
    res.tables.append(medians)
