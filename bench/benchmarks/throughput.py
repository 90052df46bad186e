"""1. Engine throughput: the one-click workflow with a zero window, run by the real django-q2
cluster (Q_WORKERS=2) with the poller beside it. Purchases start through
`purchases.services.buy` in this process (no HTTP in the figure), with eager start off
(ONECLICK_EAGER_START=False) so that the cluster, not this process, runs every workflow.

Sequential: start one, wait until its run finished, start the next. Concurrent: keep 16 runs in
flight. Per-workflow latency = run.finished_at - run.created_at (both written by the engine);
throughput = workflows / (last finished_at - first created_at).
"""

from __future__ import annotations

import threading
import time

from bench.lib import workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.stats import summary

# DBOS 3.4 on this kind of machine (workflows/s): sequential, 16 concurrent.
DBOS = {"postgres": (93.0, 120.0), "sqlite": (99.0, 68.0)}
POLL_INTERVAL = 0.002
# Several starting threads, as several web workers would be: one thread calling services.buy
# alone would make this process the bottleneck of the 16-concurrent figure.
CONCURRENT_STARTERS = 4
VARIANT_Q_POLL = "0.005"


def _drive(
    ctx: BenchContext, prefix: str, count: int, in_flight: int, starters: int, time_limit: float
) -> list[float]:
    """Start `count` purchases from `starters` threads, each keeping `in_flight // starters`
    runs unfinished (a thread starts the next one as soon as one of its runs finished).
    Returns the seconds of each `services.buy` call."""
    from django.db import connection

    from durable.models import WorkflowRun

    lock = threading.Lock()
    next_index = 0
    buy_seconds: list[float] = []
    deadline = time.monotonic() + time_limit
    per_thread = max(1, in_flight // starters)

    def take() -> int | None:
        nonlocal next_index
        with lock:
            if next_index >= count:
                return None
            next_index += 1
            return next_index - 1

    def loop() -> None:
        flying: set[str] = set()
        exhausted = False
        try:
            while (flying or not exhausted) and time.monotonic() < deadline:
                while len(flying) < per_thread and not exhausted:
                    index = take()
                    if index is None:
                        exhausted = True
                        break
                    began = time.perf_counter()
                    flying.add(workload.buy(ctx.seed, f"{prefix}-{index}"))
                    with lock:
                        buy_seconds.append(time.perf_counter() - began)
                if not flying:
                    break
                done = WorkflowRun.objects.filter(
                    pk__in=flying, status__in=workload.FINISHED
                ).values_list("pk", flat=True)
                finished = set(done)
                if finished:
                    flying -= finished
                else:
                    time.sleep(POLL_INTERVAL)
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, name=f"starter-{i}") for i in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return buy_seconds


def _round(
    ctx: BenchContext, prefix: str, count: int, in_flight: int, time_limit: float, label: str
) -> None:
    """Run one round of `count` purchases with `in_flight` at a time; record the figures."""
    starters = 1 if in_flight == 1 else CONCURRENT_STARTERS
    buy_seconds = _drive(ctx, prefix, count, in_flight, starters, time_limit)
    rows = workload.purchases_with_prefix(ctx.seed, prefix + "-")
    finished = [r for r in rows if r.finished_at is not None]
    bad = [r for r in finished if r.state != "PURCHASE_CONFIRMED"]
    res = ctx.result
    if len(finished) < count or bad:
        res.note(f"{label} {prefix}: {len(finished)}/{count} finished, {len(bad)} not CONFIRMED")
    if not finished:
        return
    span = (max(r.finished_at for r in finished) - min(r.created_at for r in rows)).total_seconds()
    lat = summary([(r.finished_at - r.created_at).total_seconds() * 1000 for r in finished])
    seq_ref, conc_ref = DBOS[ctx.db.vendor]
    ref = 0.0 if "Q_POLL" in label else seq_ref if in_flight == 1 else conc_ref
    goal = {"goal": f">= {2 * ref:g} (2x DBOS {ref:g})", "goal_min": 2 * ref}
    res.add(f"{label}: workflows/s", "wf/s", len(finished) / span, **(goal if ref else {}))
    res.add(f"{label}: latency p50", "ms", lat["p50"])
    res.add(f"{label}: latency p99", "ms", lat["p99"])
    res.add(f"{label}: latency max", "ms", lat["max"])
    buy_p50 = summary(buy_seconds)["p50"] * 1000
    res.add(
        f"{label}: services.buy in the bench process ({starters} thread(s)), p50", "ms", buy_p50
    )


def run(ctx: BenchContext) -> None:
    seq = ctx.size(200, 25)
    conc = ctx.size(1000, 150)
    limit = ctx.size(300, 60)
    ctx.result.settings["purchases per round"] = f"sequential {seq}, 16 concurrent {conc}"
    with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=0.0, ONECLICK_EAGER_START=False):
        ctx.start_poller()
        worker = ctx.start_worker()
        run_id = workload.buy(ctx.seed, "warmup-0")
        if workload.wait_finished([run_id], 60):
            ctx.result.note("the warm-up workflow did not finish within 60 s")
        for n in range(ctx.rounds):
            _round(ctx, f"seq{n}", seq, 1, limit, "sequential")
            _round(ctx, f"conc{n}", conc, 16, limit, "16 concurrent")
        # The same sequential loop with django-q2 polling its ORM queue every 5 ms instead of
        # the default: how much of the sequential latency is the broker's poll interval.
        worker.kill()
        ctx.start_worker(Q_POLL_SECONDS=VARIANT_Q_POLL)
        for n in range(ctx.rounds):
            _round(
                ctx, f"fastpoll{n}", seq, 1, limit, f"sequential, Q_POLL_SECONDS={VARIANT_Q_POLL}"
            )
