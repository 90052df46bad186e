"""6. The engine against DBOS Transact 3.4, in the same run: the one-click workflow with a zero
window, sequential and 16 concurrent. Ours both through the django-q2 cluster exactly as in
benchmark 1 and with the default eager start (the process that buys runs the workflow, in the
buy's own transaction: DBOS's way too, whose start_workflow runs the workflow in the starting
process), each against DBOS's round just before it. DBOS's runs in a process of its own
(bench/peers/dbos_driver.py) with the same workflow: `DBOS.recv("cancel",
timeout_seconds=window)`, then one datasource transaction (SQLAlchemyDatasource, READ COMMITTED
on PostgreSQL, SERIALIZABLE on SQLite, its only level) that decrements the stock if any is left
and inserts the order, then the result. DBOS's databases are its own (a system database and an
application database: SQLite files, or oneclick_bench_dbos_* on the same PostgreSQL server).

Rounds alternate: ours sequential, DBOS sequential, ours 16 concurrent, DBOS 16 concurrent, then
our two eager rounds; so a disturbance of the shared machine falls on both sides. Each ratio is
taken per round (ours / DBOS of the same round) and its median is the judged figure.
DBOS's times are taken by its driver around the calls (DBOS's own timestamps are whole seconds
on SQLite): from just before `DBOS.start_workflow` to the return of `get_result`, which counts
the start call and the hand-back that our engine's created_at-to-finished_at leaves out (a few
ms against DBOS); DBOS's 16 concurrent are 16 threads, each starting one workflow and waiting
for its result.

Many waiting: DBOS holds one thread per workflow blocked in `recv`. The driver starts N
workflows with a window longer than it takes to start them all, samples its own thread count
and RSS every 0.25 s, and measures each confirmation's lateness (the order's insert time,
from the database's clock, minus the start call's time plus the window).
"""

from __future__ import annotations

from bench.benchmarks import throughput
from bench.lib import cpu, peers, workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.results import BenchResult, Table
from bench.lib.stats import fmt, median, summary

GOAL_RATIO = 3.0
CONCURRENCY = 16


def _last(res: BenchResult, name: str) -> float:
    fig = res.figure(name, "")
    return fig.rounds[-1] if fig.rounds else float("nan")


def _dbos_round(
    ctx: BenchContext, driver: peers.DbosDriver, prefix: str, count: int, in_flight: int
) -> None:
    label = "DBOS sequential" if in_flight == 1 else f"DBOS {in_flight} concurrent"
    roles = {"DBOS driver (workflows and their starters)": driver.pid}
    before = cpu.snapshot(roles)
    answer = driver.ask("throughput", prefix, count, in_flight)
    shares = cpu.core_shares(before, cpu.snapshot(roles))
    res = ctx.result
    if answer.get("failure_count") or answer.get("confirmed", 0) < count:
        res.note(
            f"{label} {prefix}: {answer.get('confirmed')}/{count} confirmed, "
            f"{answer.get('failure_count')} failed, e.g. {answer.get('failures')}"
        )
    began, ended = answer["began"], answer["ended"]
    if not began:
        return
    lat = summary([(e - b) * 1000 for b, e in zip(began, ended, strict=True)])
    res.add(f"{label}: workflows/s", "wf/s", len(began) / (max(ended) - min(began)))
    res.add(f"{label}: latency p50", "ms", lat["p50"])
    res.add(f"{label}: latency p99", "ms", lat["p99"])
    if in_flight > 1:
        for role, share in shares.items():
            res.add(f"{label}: CPU, {role}", "% of a core", share)


def _ratio(ctx: BenchContext, ours: str, peer: str, label: str) -> None:
    """Ours / DBOS for this round's workflows/s, judged against GOAL_RATIO."""
    res = ctx.result
    value = _last(res, f"{ours}: workflows/s") / _last(res, f"{peer}: workflows/s")
    res.add(
        f"ratio ours/DBOS, {label}: workflows/s",
        "x",
        value,
        goal=f">= {GOAL_RATIO:g}x DBOS (same round)",
        goal_min=GOAL_RATIO,
    )


def _comparison_table(res: BenchResult) -> None:
    rows = []
    eager_seq = f"sequential, {throughput.EAGER_LABEL}"
    eager_conc = f"16 concurrent, {throughput.EAGER_LABEL}"
    pairs = [
        ("sequential", "DBOS sequential", "sequential", "ratio ours/DBOS, sequential"),
        (
            "16 concurrent",
            f"DBOS {CONCURRENCY} concurrent",
            "16 concurrent",
            "ratio ours/DBOS, 16 concurrent",
        ),
        (eager_seq, "DBOS sequential", eager_seq, f"ratio ours/DBOS, {eager_seq}"),
        (
            eager_conc,
            f"DBOS {CONCURRENCY} concurrent",
            eager_conc,
            f"ratio ours/DBOS, {eager_conc}",
        ),
    ]
    for ours, peer, label, ratio in pairs:
        for metric in ("workflows/s", "latency p50", "latency p99"):
            mine = median(res.figure(f"{ours}: {metric}", "").rounds)
            theirs = median(res.figure(f"{peer}: {metric}", "").rounds)
            ratio_rounds = res.figure(f"{ratio}: workflows/s", "").rounds
            per_round = fmt(median(ratio_rounds)) if metric == "workflows/s" else ""
            rows.append(
                [f"{label}: {metric}", fmt(mine), fmt(theirs), fmt(mine / theirs), per_round]
            )
    res.tables.append(
        Table(
            "Ours (django-q2 cluster, then the default eager start) against DBOS, medians over "
            "the rounds",
            ["figure", "ours", "DBOS", "ours / DBOS (medians)", "median of per-round ratios"],
            rows,
        )
    )


def _waiting(ctx: BenchContext, driver: peers.DbosDriver) -> None:
    count = ctx.size(1000, 200)
    window = ctx.size(40, 10)
    answer = driver.ask("waiting", "wait", count, window)
    res = ctx.result
    label = f"DBOS {count} waiting ({window} s window)"
    res.add(f"{label}: start rate", "workflows/s", count / answer["start_seconds"])
    res.add(f"{label}: threads before", "threads", answer["threads_before"])
    res.add(f"{label}: threads, peak", "threads", answer["threads_peak"])
    res.add(f"{label}: RSS before", "MiB", answer["rss_kib_before"] / 1024)
    res.add(f"{label}: RSS, peak", "MiB", answer["rss_kib_peak"] / 1024)
    late = summary(answer["lateness_ms"])
    res.add(f"{label}: lateness p50", "ms", late["p50"])
    res.add(f"{label}: lateness p99", "ms", late["p99"])
    res.add(f"{label}: lateness max", "ms", late["max"])
    res.add(f"{label}: not confirmed at the end", "workflows", count - answer["confirmed"])
    per_thread_kib = (answer["rss_kib_peak"] - answer["rss_kib_before"]) / max(
        1, answer["threads_peak"] - answer["threads_before"]
    )
    extra_threads = answer["threads_peak"] - answer["threads_before"]
    res.note(
        f"{label}: {extra_threads} threads more at the peak than before, "
        f"{fmt(per_thread_kib)} KiB of RSS each. EXTRAPOLATED, not measured: 10,000 waiting "
        f"would hold about 10,000 threads and {fmt(per_thread_kib * 10_000 / 1024)} MiB more "
        "RSS in the one process that started them (the thread count grows with the waiting "
        "workflows: DBOS's executor has no maximum unless max_executor_threads is set)."
    )


def run(ctx: BenchContext) -> None:
    seq = ctx.size(200, 25)
    conc = ctx.size(1000, 150)
    limit = ctx.size(300, 60)
    ctx.result.settings["purchases per round"] = (
        f"sequential {seq}, {CONCURRENCY} concurrent {conc} (each side)"
    )
    with (
        peers.peer_databases(ctx.db.vendor, "dbos") as databases,
        peers.DbosDriver(databases, ctx.log_dir) as driver,
        settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=0.0, ONECLICK_EAGER_START=False),
    ):
        poller = ctx.start_poller()
        worker = ctx.start_worker()
        run_id = workload.buy(ctx.seed, "warmup-0")
        if workload.wait_finished([run_id], 60):
            ctx.result.note("the warm-up workflow did not finish within 60 s")
        driver.ask("throughput", "warmup", 10, 1)
        cpu_of = {"qcluster (all processes)": worker.pid, "poller": poller.pid}
        for n in range(ctx.rounds):
            throughput.workflow_round(ctx, f"seq{n}", seq, 1, limit, "sequential")
            _dbos_round(ctx, driver, f"seq{n}", seq, 1)
            _ratio(ctx, "sequential", "DBOS sequential", "sequential")
            throughput.workflow_round(
                ctx, f"conc{n}", conc, CONCURRENCY, limit, "16 concurrent", cpu_of
            )
            _dbos_round(ctx, driver, f"conc{n}", conc, CONCURRENCY)
            _ratio(ctx, "16 concurrent", f"DBOS {CONCURRENCY} concurrent", "16 concurrent")
            with settings_override(ONECLICK_EAGER_START=True):
                # The production default, and DBOS's own way: the process that starts a
                # workflow runs it. Against the DBOS rounds just above.
                label = f"sequential, {throughput.EAGER_LABEL}"
                throughput.workflow_round(ctx, f"eagerseq{n}", seq, 1, limit, label)
                _ratio(ctx, label, "DBOS sequential", label)
                label = f"16 concurrent, {throughput.EAGER_LABEL}"
                throughput.workflow_round(ctx, f"eagerconc{n}", conc, 16, limit, label)
                _ratio(ctx, label, f"DBOS {CONCURRENCY} concurrent", label)
        _comparison_table(ctx.result)
        _waiting(ctx, driver)
