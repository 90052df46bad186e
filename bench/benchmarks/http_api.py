"""4. The JSON API through gunicorn (bin/web, DEBUG off) with the cluster and poller running:
POST /api/buy (a new key each time) and GET /api/status (existing keys), latency p50/p99 and
requests/s at concurrency 1 and 16, with DRF token auth; then a few requests with HTTP Basic to
show what hashing the password on every request costs. The load generator runs on the same
2 cores as the servers."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.lib.context import BenchContext
from bench.lib.httpload import Request, run_load
from bench.lib.machine import ROOT
from bench.lib.stats import summary

WINDOW = "5"
# BENCH_HTTP_LIMITS=on: the web processes count every request in the rate limits' cache, as in
# production, at rates too high to refuse any: what counting costs in the store DJANGO_CACHE_URL
# names (files by default, db://table, redis://...). Off (the default): no per-user rates.
COUNTING_RATE = "1000000/s"


def limits_overrides(ctx: BenchContext) -> dict[str, str]:
    """The web's environment for BENCH_HTTP_LIMITS, recorded in the result's settings."""
    if os.environ.get("BENCH_HTTP_LIMITS", "off") != "on":
        ctx.result.settings["rate limits"] = "off (user, buy and cancel rates)"
        return {}
    store = ctx.env.get("DJANGO_CACHE_URL") or ctx.env.get("REDIS_URL") or "file (var/cache)"
    if store.startswith("db://"):
        subprocess.run(
            [sys.executable, "manage.py", "createcachetable"], cwd=ROOT, env=ctx.env, check=True
        )
    ctx.result.settings["rate limits"] = f"counted at {COUNTING_RATE} in {store}"
    rates = ("USER", "BUY", "CANCEL")
    return {f"ONECLICK_THROTTLE_{name}": COUNTING_RATE for name in rates}


def load_phase(
    ctx: BenchContext, port: int, label: str, requests: list[Request], concurrency: int, auth: str
) -> None:
    """Send `requests` at `concurrency` and record `<label> c=<concurrency>: p50`, `p99` and
    `throughput`, with a note when any request failed or answered other than 200/202."""
    load = run_load(port, requests, concurrency, auth, ctx.size(120, 45))
    res = ctx.result
    stats = summary(load.latencies)
    res.add(f"{label} c={concurrency}: p50", "ms", stats["p50"] * 1000)
    res.add(f"{label} c={concurrency}: p99", "ms", stats["p99"] * 1000)
    res.add(f"{label} c={concurrency}: throughput", "req/s", load.per_second)
    unexpected = {s: n for s, n in load.statuses.items() if s not in (200, 202)}
    if unexpected or load.errors or load.completed < len(requests):
        res.note(
            f"{label} c={concurrency}: {load.completed}/{len(requests)} answered, "
            f"statuses {dict(load.statuses)}, errors {dict(load.errors)}"
        )


def run(ctx: BenchContext) -> None:
    n1 = ctx.size(500, 100)
    n16 = ctx.size(2000, 300)
    n_basic = ctx.size(32, 16)
    ctx.result.settings["requests per phase"] = (
        f"c=1: {n1}, c=16: {n16}, Basic: {n_basic}; window {WINDOW} s (the purchases bought "
        "here are confirmed by the cluster meanwhile)"
    )
    ctx.start_poller(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW)
    ctx.start_worker(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW)
    _, port = ctx.start_web(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW, **limits_overrides(ctx))
    token, basic = ctx.seed.token_header, ctx.seed.basic_header
    body = {"item_id": ctx.seed.item_id}
    # Warm every gunicorn worker and thread up (imports, connections) before measuring.
    run_load(port, [Request("GET", "/api/status/none")] * 32, 8, token, 60)
    for n in range(ctx.rounds):
        for concurrency, count in ((1, n1), (16, n16)):
            keys = [f"h{n}c{concurrency}-{i}" for i in range(count)]
            load_phase(
                ctx,
                port,
                "token POST /api/buy",
                [Request("POST", f"/api/buy/{k}", body) for k in keys],
                concurrency,
                token,
            )
            load_phase(
                ctx,
                port,
                "token GET /api/status",
                [Request("GET", f"/api/status/{k}") for k in keys],
                concurrency,
                token,
            )
        keys = [f"h{n}c1-{i}" for i in range(n_basic)]
        for concurrency in (1, 16):
            load_phase(
                ctx,
                port,
                "Basic GET /api/status",
                [Request("GET", f"/api/status/{k}") for k in keys],
                concurrency,
                basic,
            )
