"""1b. Where a workflow's SQL statements and commits go.

Inline (both databases, no cluster running): this process plays every part a task's life has,
through the same functions the real processes call: the start (`purchases.services.buy`), the
pusher's `broker.dequeue()`, the worker's task (`durable.tasks.advance_task`, after the
`close_old_connections()` and the pre_execute signal django-q2 sends before each task), the
monitor's `broker.acknowledge()` if the task still asks for it (an engine task deletes its own
queue row in its last transaction), and, for a purchase with a window, the poller's
`durable.transport.poller.poll_once()`. Every statement is counted with its caller (see
bench/lib/sqlcount.py).

Real processes (PostgreSQL only): pg_stat_database's xact_commit and pg_stat_user_tables' row
counters over a batch of zero-window purchases run by the real cluster, minus this process's own
transactions, per workflow; and the idle background rate of the processes (their polling).
"""

from __future__ import annotations

import pydoc
import time
from collections import defaultdict

from bench.lib import workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.results import Table
from bench.lib.sqlcount import SqlCount

STATS_FLUSH_WAIT = 11.0  # PostgreSQL flushes an idle backend's counters within 10 s


_BROKER: dict[str, object] = {}


def _task_once(counter: SqlCount, label: str) -> None:
    """Dequeue one task as the pusher does, run it as a worker does, acknowledge it."""
    from django.db import close_old_connections
    from django_q.brokers import get_broker
    from django_q.signals import pre_execute
    from django_q.signing import SignedPackage

    broker = _BROKER.setdefault("broker", get_broker())  # one per process, as the pusher's
    counter.phase = f"{label}: django-q2 pusher dequeue"
    tasks = None
    for _ in range(200):
        tasks = broker.dequeue()
        if tasks:
            break
    assert tasks, "no task was enqueued"
    ack_id, payload = tasks[0]
    task = SignedPackage.loads(payload)
    task["ack_id"] = ack_id
    counter.phase = f"{label}: worker runs durable.tasks.advance_task"
    close_old_connections()
    func = pydoc.locate(task["func"])
    pre_execute.send(sender="django_q", func=func, task=task)
    func(*task["args"], **task["kwargs"])
    counter.phase = f"{label}: django-q2 monitor ack"
    if task.get("ack_id"):
        broker.acknowledge(task["ack_id"])


def _one_workflow(ctx: BenchContext, key: str, window: float) -> SqlCount:
    """Count one purchase's statements end to end (window 0: one task; else two tasks and
    the poller's wake-up in between)."""
    from durable.transport.poller import poll_once

    counter = SqlCount()
    uninstall = counter.install()
    try:
        with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=window, ONECLICK_EAGER_START=False):
            counter.phase = "start: services.buy (web)"
            run_id = workload.buy(ctx.seed, key)
            _task_once(counter, "task 1")
            if window:
                time.sleep(window + 0.05)
                counter.phase = "poller: poll_once (deadline came)"
                assert run_id in poll_once()
                _task_once(counter, "task 2")
    finally:
        uninstall()
    assert not workload.unfinished([run_id]), f"{run_id} did not finish inline"
    return counter


def _inline(ctx: BenchContext) -> None:
    res = ctx.result
    for flow, window in (("zero window", 0.0), ("with a window", 0.2)):
        for n in range(2):  # warm up the code paths and caches
            _one_workflow(ctx, f"warm-{flow[:4]}-{n}", window)
        last = None
        for n in range(ctx.rounds):
            last = _one_workflow(ctx, f"count-{flow[:4]}-{n}", window)
            phases = last.by_phase()
            total = {k: sum(p[k] for p in phases.values()) for k in next(iter(phases.values()))}
            res.add(f"{flow}: SQL statements per workflow (all)", "stmts", total["statements"])
            res.add(f"{flow}: of which BEGIN/SAVEPOINT/RELEASE", "stmts", total["control"])
            res.add(f"{flow}: transactions per workflow", "txns", total["transactions"])
        assert last is not None
        summary = Table(
            f"{flow}: per phase (inline, last round)",
            [
                "phase",
                "statements",
                "BEGIN/SAVEPOINT/RELEASE",
                "commits",
                "autocommit statements",
                "transactions",
            ],
        )
        for phase, row in last.by_phase().items():
            summary.rows.append(
                [
                    phase,
                    row["statements"],
                    row["control"],
                    row["commits"],
                    row["autocommit"],
                    row["transactions"],
                ]
            )
        res.tables.append(summary)
        detail = Table(
            f"{flow}: statements by caller (inline, last round)",
            ["phase", "caller", "kind", "n", "first such statement"],
        )
        for (phase, owner, kind), count in last.statements.items():
            detail.rows.append([phase, owner, kind, count, last.samples[(phase, owner, kind)]])
        res.tables.append(detail)
        for table in (summary, detail):
            print(f"  {table.title}")
            for row in table.rows:
                print("   ", " | ".join(str(c) for c in row))


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def _real_postgres(ctx: BenchContext) -> None:
    """Counters over a batch run by the real cluster (zero window)."""
    res = ctx.result
    db = ctx.db
    count = ctx.size(300, 80)
    ctx.start_poller()
    ctx.start_worker()
    with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=0.0, ONECLICK_EAGER_START=False):
        workload.wait_finished([workload.buy(ctx.seed, "pgwarm-0")], 60)
        time.sleep(STATS_FLUSH_WAIT)
        idle0, t0 = db.pg_counters(), time.monotonic()
        time.sleep(STATS_FLUSH_WAIT)
        idle1, t1 = db.pg_counters(), time.monotonic()
        idle_rate = (idle1["xact_commit"] - idle0["xact_commit"] - 2) / (t1 - t0)
        res.add("idle background: commits/s of the processes (polling)", "txn/s", idle_rate)

        counter = SqlCount(phase="bench")
        before, began = db.pg_counters(), time.monotonic()
        uninstall = counter.install()
        try:
            run_ids = [workload.buy(ctx.seed, f"pg-{i}") for i in range(count)]
            left = workload.wait_finished(run_ids, 120, interval=1.0)
        finally:
            uninstall()
        time.sleep(STATS_FLUSH_WAIT)
        after, ended = db.pg_counters(), time.monotonic()
    if left:
        res.note(f"{len(left)} of {count} runs did not finish; per-workflow counters are off")
    bench_txns = counter.by_phase()["bench"]["transactions"]
    delta = _delta(after, before)
    # the read of `after` is one transaction of pg_counters' own connection... two statements
    system = delta["xact_commit"] - bench_txns - 2
    res.add(
        "real cluster: commits per workflow (processes only, incl. their polling)",
        "txn",
        system / count,
    )
    res.add(
        "real cluster: commits per workflow minus the idle background rate",
        "txn",
        (system - idle_rate * (ended - began)) / count,
    )
    res.add("real cluster: rollbacks per workflow", "txn", delta["xact_rollback"] / count)
    tables: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in delta.items():
        if "." in key:
            table, what = key.split(".", 1)
            tables[table][what] = value / count
    rows = Table(
        f"real cluster, PostgreSQL: row operations per workflow ({count} workflows,"
        " incl. this process's starts)",
        ["table", "inserted", "updated", "of which HOT", "deleted", "seq scans", "index scans"],
    )
    for table, values in sorted(tables.items()):
        if any(values.get(k) for k in ("ins", "upd", "del", "seq_scan", "idx_scan")):
            rows.rows.append(
                [table]
                + [
                    round(values.get(k, 0), 2)
                    for k in ("ins", "upd", "hot_upd", "del", "seq_scan", "idx_scan")
                ]
            )
    res.tables.append(rows)
    print(f"  {rows.title}")
    for row in rows.rows:
        print("   ", " | ".join(str(c) for c in row))


def run(ctx: BenchContext) -> None:
    from bench.lib.database import pg_has_stat_statements

    _inline(ctx)
    if ctx.db.vendor == "postgres":
        if not pg_has_stat_statements():
            ctx.result.note(
                "pg_stat_statements is not loaded on this server (it needs "
                "shared_preload_libraries and a restart of a shared server): statements are "
                "counted inline; the real cluster's commits come from pg_stat_database."
            )
        _real_postgres(ctx)
    else:
        ctx.result.note(
            "SQLite keeps no commit counters: the real cluster is measured on "
            "PostgreSQL only; the inline counts run the same code."
        )
