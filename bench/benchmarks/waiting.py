"""2. Many purchases waiting at once (5 s window): 10,000 started through the services layer
(from several threads of this process) as fast as they go, 10,000 more paced at PACED_RATE
purchases/s, and 2,000 over HTTP (token auth, 16 concurrent), with the real web, cluster and
poller running. Then one more round of the services' purchases with
a window longer than it takes to start them all (150 s), so that all of them wait at once.

Goals: lateness p99 <= 500 ms, and every purchase confirmed within 1 s of its deadline. Also
sampled every 0.5 s: runs by status, the django-q2 queue's depth, and the RSS/PSS of every
process from /proc.

A waiting run must hold no worker, so the runs 'running' outside a plain step's call stay at
most Q_WORKERS, counting only leases held by processes other than the bench process. (An eager
start parks a purchase inside the buy's own transaction, without a lease; a lease owner is
'host:pid:token', and any the bench process holds itself are left out of that figure.) A run in
a plain step's call (the charge) keeps its lease on a worker's step pool, holding a slot, not
the worker: those are counted apart, at most Q_WORKERS x DURABLE_STEPS_IN_FLIGHT. The peak over
all leases is reported beside them, without a goal.
"""

from __future__ import annotations

import time

from bench.lib import lateness, workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.httpload import Request, run_load
from bench.lib.results import BenchResult
from bench.lib.stats import summary
from devtools.processes import Process

WINDOW = 5.0
# The paced round's start rate: about what the unpaced rounds offered in the runs of
# 2026-11-29 (155-181 purchases/s), before a start became one commit and the unpaced rounds
# began offering over 260/s, more than this 2-core machine can also confirm meanwhile.
PACED_RATE = 150.0
# Longer than starting 10,000 takes here (about 90 s at 117 purchases/s on a loaded day).
ALL_AT_ONCE_WINDOW = 150.0
STARTER_THREADS = 4
HTTP_CONCURRENCY = 16


def _memory(res: BenchResult, label: str, sampler: workload.Sampler) -> None:
    """RSS per process (maximum over the samples) and the PSS of all of them: RSS counts the
    pages a forked child shares with its parent in both, PSS splits them, so PSS adds up."""
    total_pss = 0
    for name, (rss, pss) in sorted(sampler.memory_max.items()):
        res.add(f"{label}: RSS max, {name}", "MiB", rss / 1024)
        total_pss += pss
    res.add(f"{label}: PSS of all processes (sum of per-process maxima)", "MiB", total_pss / 1024)


def _sampler(procs: list[Process]) -> workload.Sampler:
    """The sampler of a round, also counting the runs leased by processes other than this one."""
    return workload.Sampler(procs, extra=workload.running_leased_elsewhere)


def _held(res: BenchResult, label: str, sampler: workload.Sampler, workers: int) -> None:
    res.add(f"{label}: runs waiting at once, peak", "runs", sampler.max_status("waiting"))
    res.add(
        f"{label}: runs 'running' leased by processes other than the bench process, "
        "not in a plain step's call, peak",
        "runs",
        sampler.max_extra("not in a call"),
        goal=f"<= {workers} (Q_WORKERS): no worker held by a waiting run",
        goal_max=workers,
    )
    res.add(
        f"{label}: runs in a plain step's call (a step pool's slot, or a task with the pool "
        "off), peak",
        "runs",
        sampler.max_extra("in a call"),
    )
    res.add(
        f"{label}: runs 'running' (any lease, the bench process's too), peak",
        "runs",
        sampler.max_status("running"),
    )
    res.add(f"{label}: django-q2 queue depth, peak", "tasks", sampler.max_queue())


def _services_round(
    ctx: BenchContext,
    procs: list[Process],
    n: int,
    count: int,
    window: float = WINDOW,
    label: str = "services",
    tag: str = "svc",
    rate: float | None = None,
) -> None:
    res = ctx.result
    prefix = f"{tag}{n}-"
    keys = [f"{prefix}{i}" for i in range(count)]
    began = time.monotonic()
    with _sampler(procs) as sampler:
        with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=window):
            durations = workload.buy_many(ctx.seed, keys, STARTER_THREADS, ctx.size(900, 240), rate)
        start_seconds = time.monotonic() - began
        rows = workload.purchases_with_prefix(ctx.seed, prefix)
        left = workload.wait_finished([r.run_id for r in rows], window + ctx.size(900, 300), 1.0)
    res.add(f"{label}: purchases started", "purchases", len(durations))
    res.add(
        f"{label}: start rate ({STARTER_THREADS} threads)",
        "purchases/s",
        len(durations) / start_seconds,
    )
    res.add(f"{label}: services.buy p50", "ms", summary(durations)["p50"] * 1000)
    if left:
        res.note(f"{label} round {n}: {len(left)} runs unfinished at the time limit")
    lateness.record(res, label, workload.purchases_with_prefix(ctx.seed, prefix), count)
    _held(res, label, sampler, int(ctx.env["Q_WORKERS"]))
    _memory(res, label, sampler)


def _http_round(ctx: BenchContext, procs: list[Process], port: int, n: int, count: int) -> None:
    res = ctx.result
    label = f"HTTP token c={HTTP_CONCURRENCY}"
    prefix = f"http{n}-"
    body = {"item_id": ctx.seed.item_id}
    requests = [Request("POST", f"/api/buy/{prefix}{i}", body) for i in range(count)]
    with _sampler(procs) as sampler:
        load = run_load(
            port, requests, HTTP_CONCURRENCY, ctx.seed.token_header, ctx.size(1500, 240), ok=(202,)
        )
        rows = workload.purchases_with_prefix(ctx.seed, prefix)
        left = workload.wait_finished([r.run_id for r in rows], ctx.size(900, 300), 1.0)
    res.add(f"{label}: POST /api/buy accepted (202)", "requests", load.statuses.get(202, 0))
    res.add(f"{label}: POST /api/buy rate", "req/s", load.per_second)
    stats = summary(load.latencies)
    res.add(f"{label}: POST /api/buy p50", "ms", stats["p50"] * 1000)
    res.add(f"{label}: POST /api/buy p99", "ms", stats["p99"] * 1000)
    if load.errors or set(load.statuses) - {202}:
        res.note(f"{label}: statuses {dict(load.statuses)}, errors {dict(load.errors)}")
    if left:
        res.note(f"{label} round {n}: {len(left)} runs unfinished at the time limit")
    lateness.record(
        res, label, workload.purchases_with_prefix(ctx.seed, prefix), load.statuses.get(202, 0)
    )
    _held(res, label, sampler, int(ctx.env["Q_WORKERS"]))
    _memory(res, label, sampler)


def run(ctx: BenchContext) -> None:
    n_services = ctx.size(10_000, 1_000)
    n_http = ctx.size(2_000, 48)
    http_rounds = ctx.rounds
    ctx.result.settings["window"] = f"{WINDOW:g} s"
    ctx.result.settings["purchases per round"] = (
        f"services {n_services} ({ctx.rounds} round(s)), HTTP {n_http} ({http_rounds} round(s):"
        " token auth)"
    )
    window_env = {"ONECLICK_CANCEL_WINDOW_SECONDS": str(WINDOW)}
    procs = [ctx.start_poller(**window_env), ctx.start_worker(**window_env)]
    web, port = ctx.start_web(**window_env)
    procs.append(web)
    for n in range(ctx.rounds):
        _services_round(ctx, procs, n, n_services)
    for n in range(ctx.rounds):
        label = f"services, paced at {PACED_RATE:g}/s"
        _services_round(ctx, procs, n, n_services, label=label, tag="paced", rate=PACED_RATE)
    for n in range(http_rounds):
        _http_round(ctx, procs, port, n, n_http)
    # With a 5 s window the first purchases are confirmed long before the last ones start, so
    # the rounds above never have all of them waiting at once; this one (a single round) does.
    window = ctx.size(ALL_AT_ONCE_WINDOW, 20.0)
    label = f"services, all waiting at once ({window:g} s window)"
    _services_round(ctx, procs, 0, n_services, window, label, tag="once")
