"""7. The JSON API against its peers, in the same run: `POST /api/buy` (a new key each time) and
`GET /api/status` (the keys just bought) at concurrency 1 and 16, with the same load generator
(bench/lib/httpload.py: keep-alive connections, one thread per concurrent client) against:

- ours: bin/web (gunicorn, WEB_CONCURRENCY=2, WEB_THREADS=4, DEBUG off), DRF token auth, the
  django-q2 cluster and the poller running, eager start on (the product's defaults);
- DBOS + FastAPI: the same API (bench/peers/dbos_http.py) on uvicorn with 2 worker processes,
  the same one-click workflow on DBOS 3.4 (each purchase a workflow waiting in `DBOS.recv`),
  the token looked up in a table on every request;
- the framework floor: a DRF view with the same token authentication inserting one row in one
  transaction (buy) or reading it (status) in a tiny Django project (bench/peers/floor) under
  gunicorn with bin/web's settings: what any Django + DRF JSON endpoint costs here;
- the reference's stack: Express + @resonatehq/sdk on Node (bench/peers/resonate/server.js),
  in memory and not durable, no authentication: the ceiling of a server that keeps nothing.

The window is 5 s everywhere. Phases interleave the servers: for each round and concurrency,
every server's buy phase, then every server's status phase; so a disturbance of the shared
machine falls on all of them. After its buy phase, each server's last purchase is awaited (GET
/api/status until done) before the next server's phase, so that no server's confirmations fall
in another's phase (in a run of 2026-11-29 they did). Ratios are taken per
round and their median is judged. The load generator runs on the same 2 cores as the servers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.benchmarks.http_api import load_phase
from bench.lib import peers
from bench.lib.context import BenchContext
from bench.lib.httpload import Client, Request, run_load
from bench.lib.results import BenchResult, Table
from bench.lib.stats import fmt, median
from devtools import processes
from devtools.ports import BENCH_SERVERS, free_port

WINDOW = 5.0
OURS, DBOS, FLOOR, RESONATE = "ours", "DBOS+FastAPI", "floor (DRF, one insert)", "Resonate (Node)"
BUY_RATIO = 3.0
P99_SHARE = 0.5
FLOOR_MULTIPLE = 1.5
BUY, STATUS = "POST /api/buy", "GET /api/status"
DRAIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    port: int
    auth: str


@contextlib.contextmanager
def _servers(ctx: BenchContext) -> Iterator[list[Server]]:
    """Every server started and answering (ours first); the peers' databases dropped after."""
    window_env = {"ONECLICK_CANCEL_WINDOW_SECONDS": str(WINDOW)}
    ctx.start_poller(**window_env)
    ctx.start_worker(**window_env)
    _, port = ctx.start_web(**window_env)
    servers = [Server(OURS, port, ctx.seed.token_header)]
    with (
        peers.peer_databases(ctx.db.vendor, "dbosapi") as dbos_dbs,
        peers.peer_databases(ctx.db.vendor, "floor") as floor_dbs,
    ):
        started: list[processes.Process] = []
        try:
            port = free_port(BENCH_SERVERS)
            proc, token = peers.dbos_api(dbos_dbs, ctx.log_dir, port, WINDOW)
            started.append(proc)
            servers.append(Server(DBOS, port, f"Token {token}"))
            port = free_port(BENCH_SERVERS)
            proc, token = peers.floor(floor_dbs, ctx.log_dir, port)
            started.append(proc)
            servers.append(Server(FLOOR, port, f"Token {token}"))
            missing = peers.resonate_missing()
            if missing:
                ctx.result.note(f"{RESONATE} not measured: {missing}")
            else:
                port = free_port(BENCH_SERVERS)
                started.append(peers.resonate(ctx.log_dir, port, WINDOW))
                servers.append(Server(RESONATE, port, "Token none"))
            yield servers
        finally:
            for proc in started:
                proc.kill()


def _drain(ctx: BenchContext, server: Server, last_key: str) -> None:
    """Wait until `server` has confirmed its last purchase (the floor confirms nothing), so that
    its confirmations do not fall in the next server's phase."""
    if server.name == FLOOR:
        return
    client = Client(server.port, server.auth)
    deadline = time.monotonic() + WINDOW + DRAIN_SECONDS
    try:
        while time.monotonic() < deadline:
            status, body = client.json(Request("GET", f"/api/status/{last_key}"))
            if status == 200 and isinstance(body, dict) and body.get("status") == "done":
                return
            time.sleep(0.1)
    finally:
        client.close()
    ctx.result.note(f"{server.name}: {last_key} not done {DRAIN_SECONDS:g} s after its window")


def _last(res: BenchResult, name: str) -> float:
    rounds = res.figure(name, "").rounds
    return rounds[-1] if rounds else float("nan")


def _ratios(ctx: BenchContext, names: list[str], c: int) -> None:
    """This round's judged ratios at concurrency `c`."""
    res = ctx.result
    buy = BUY
    if DBOS in names:
        ours = _last(res, f"{OURS} {buy} c={c}: throughput")
        theirs = _last(res, f"{DBOS} {buy} c={c}: throughput")
        res.add(
            f"ratio ours/DBOS+FastAPI, {buy} c={c}: req/s",
            "x",
            ours / theirs,
            goal=f">= {BUY_RATIO:g}x (same round)",
            goal_min=BUY_RATIO,
        )
        ours = _last(res, f"{OURS} {buy} c={c}: p99")
        theirs = _last(res, f"{DBOS} {buy} c={c}: p99")
        res.add(
            f"ratio ours/DBOS+FastAPI, {buy} c={c}: p99",
            "x",
            ours / theirs,
            goal=f"<= {P99_SHARE:g} (at most half its p99)",
            goal_max=P99_SHARE,
        )
    if FLOOR in names and c == 1:
        for what, judged in ((buy, True), (STATUS, False)):
            floor = _last(res, f"{FLOOR} {what} c=1: throughput")
            ours = _last(res, f"{OURS} {what} c=1: throughput")
            goal = {"goal": f"<= {FLOOR_MULTIPLE:g}x the floor", "goal_max": FLOOR_MULTIPLE}
            res.add(
                f"multiple of the floor, {what} c=1: time per request (floor req/s / ours)",
                "x",
                floor / ours,
                **(goal if judged else {}),
            )


def _table(res: BenchResult, names: list[str]) -> None:
    """Medians of every server's figures beside ours, with ours / theirs."""
    peers_ = [n for n in names if n != OURS]
    columns = ["figure", "ours"] + [f"{n}; ours / it" for n in peers_]
    rows = []
    for what in (BUY, STATUS):
        for c in (1, 16):
            for metric in ("throughput", "p50", "p99"):
                mine = median(res.figure(f"{OURS} {what} c={c}: {metric}", "").rounds)
                row = [f"{what} c={c}: {metric}", fmt(mine)]
                for name in peers_:
                    theirs = median(res.figure(f"{name} {what} c={c}: {metric}", "").rounds)
                    row.append(f"{fmt(theirs)}; {fmt(mine / theirs)}")
                rows.append(row)
    res.tables.append(
        Table(
            "Medians over the rounds (req/s, or ms for p50/p99); 'ours / it' > 1 means ours is "
            "faster for req/s and slower for p50/p99",
            columns,
            rows,
        )
    )


def run(ctx: BenchContext) -> None:
    counts = {1: ctx.size(300, 40), 16: ctx.size(800, 160)}
    ctx.result.settings["requests per phase"] = (
        f"c=1: {counts[1]}, c=16: {counts[16]}; window {WINDOW:g} s everywhere"
    )
    body = {"item_id": ctx.seed.item_id}
    with _servers(ctx) as servers:
        names = [s.name for s in servers]
        for server in servers:  # imports, connections, first requests: before measuring
            run_load(server.port, [Request("GET", "/api/status/none")] * 32, 8, server.auth, 60)
        for n in range(ctx.rounds):
            for c, count in counts.items():
                keys = [f"h{n}c{c}-{i}" for i in range(count)]
                for server in servers:
                    buys = [Request("POST", f"/api/buy/{k}", body) for k in keys]
                    load_phase(ctx, server.port, f"{server.name} {BUY}", buys, c, server.auth)
                    _drain(ctx, server, keys[-1])
                for server in servers:
                    reads = [Request("GET", f"/api/status/{k}") for k in keys]
                    load_phase(ctx, server.port, f"{server.name} {STATUS}", reads, c, server.auth)
                _ratios(ctx, names, c)
        _table(ctx.result, names)
