"""Drives the DBOS one-click workflow for the benchmarks, one round per command, in a process
of its own (DBOS runs a workflow in the process that starts it, in a thread of its executor).

    python -m bench.peers.dbos_driver --app-db URL --sys-db URL

reads commands on stdin, one per line, and answers each with one JSON line on stdout:

    throughput PREFIX COUNT IN_FLIGHT   # COUNT workflows, zero window, IN_FLIGHT threads each
                                        # starting one and waiting for its result
    waiting PREFIX COUNT WINDOW         # start COUNT workflows with a WINDOW-second window,
                                        # sample threads and memory while they wait, wait for all
    slowsteps PREFIX COUNT SECONDS STARTERS  # start COUNT workflows of one SECONDS-long step
                                        # at once from STARTERS threads, wait for all; sample
                                        # threads and memory meanwhile
    quit

With --prepare it only creates the tables (DBOS's and the application's), prints the API
token as {"token": ...} and exits.

Times are taken here, around the calls (DBOS's own workflow_status timestamps are whole
seconds on SQLite): a workflow's latency runs from just before `DBOS.start_workflow` to the
return of its handle's `get_result`, so it includes the start call and the hand-back, which
oneclick's engine timestamps (created_at to finished_at) do not; throughput = workflows /
(last result - first start).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from bench.peers import dbos_oneclick

ROUND_TIME_LIMIT = 600.0


def _throughput(prefix: str, count: int, in_flight: int) -> dict[str, Any]:
    lock = threading.Lock()
    next_index = 0
    deadline = time.monotonic() + ROUND_TIME_LIMIT
    failures: list[str] = []
    began: list[float] = []
    ended: list[float] = []

    def loop() -> None:
        nonlocal next_index
        while time.monotonic() < deadline:
            with lock:
                if next_index >= count:
                    return
                key = f"{prefix}-{next_index}"
                next_index += 1
            try:
                called = time.time()
                result = dbos_oneclick.start(key, 0.0).get_result()
                returned = time.time()
                if result.get("state") != "PURCHASE_CONFIRMED":
                    raise RuntimeError(f"{key}: {result}")
                with lock:
                    began.append(called)
                    ended.append(returned)
            except Exception as exc:  # reported, never hidden
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=loop, name=f"starter-{i}") for i in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "count": count,
        "confirmed": len(began),
        "failures": failures[:5],
        "failure_count": len(failures),
        "began": began,
        "ended": ended,
    }


def _threads_and_memory() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["Threads"].split()[0]), int(fields["VmRSS"].split()[0])


def _waiting(prefix: str, count: int, window: float) -> dict[str, Any]:
    threads_before, rss_before = _threads_and_memory()
    began: dict[str, float] = {}
    first = time.monotonic()
    for i in range(count):
        key = f"{prefix}-{i}"
        began[key] = time.time()
        dbos_oneclick.start(key, window)
    start_seconds = time.monotonic() - first
    peak_threads, peak_rss = threads_before, rss_before
    deadline = first + window + ROUND_TIME_LIMIT
    while time.monotonic() < deadline:
        threads, rss = _threads_and_memory()
        peak_threads, peak_rss = max(peak_threads, threads), max(peak_rss, rss)
        if len(dbos_oneclick.confirmed_ms(prefix + "-")) >= count:
            break
        time.sleep(0.25)
    confirmed = dbos_oneclick.confirmed_ms(prefix + "-")
    return {
        "count": count,
        "start_seconds": start_seconds,
        "threads_before": threads_before,
        "threads_peak": peak_threads,
        "rss_kib_before": rss_before,
        "rss_kib_peak": peak_rss,
        "confirmed": len(confirmed),
        "lateness_ms": [ms - (began[key] + window) * 1000 for key, ms in confirmed.items()],
    }


def _slow_steps(prefix: str, count: int, seconds: float, starters: int) -> dict[str, Any]:
    threads_before, rss_before = _threads_and_memory()
    peak = {"threads": threads_before, "rss": rss_before}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            threads, rss = _threads_and_memory()
            peak["threads"], peak["rss"] = max(peak["threads"], threads), max(peak["rss"], rss)

    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    sampler.start()
    keys = [f"{prefix}-{i}" for i in range(count)]
    handles: list[Any] = []

    def start(share: list[str]) -> None:
        mine = [dbos_oneclick.start_slow_step(key, seconds) for key in share]
        with lock:
            handles.extend(mine)

    lock = threading.Lock()
    threads = [threading.Thread(target=start, args=(keys[n::starters],)) for n in range(starters)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = time.time()
    ended, failures = [], []
    for handle in handles:
        try:
            ended.append(handle.get_result()["ended"])
        except Exception as exc:  # reported, never hidden
            failures.append(f"{type(exc).__name__}: {exc}")
    done.set()
    sampler.join()
    return {
        "count": count,
        "began": began,
        "start_seconds": started - began,
        "ended": ended,
        "failures": failures[:5],
        "failure_count": len(failures),
        "threads_peak": peak["threads"],
        "rss_kib_peak": peak["rss"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-db", required=True)
    parser.add_argument("--sys-db", required=True)
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="create both databases' tables, print {'token': ...} and exit (run before the "
        "HTTP peer's workers start, so that they do not migrate at the same time)",
    )
    args = parser.parse_args()
    token = dbos_oneclick.create_schema(args.app_db)
    dbos_oneclick.launch(args.app_db, args.sys_db)
    if args.prepare:
        DBOS.destroy()
        print(json.dumps({"token": token}), flush=True)
        return 0
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            break
        if command == "throughput":
            answer = _throughput(rest[0], int(rest[1]), int(rest[2]))
        elif command == "slowsteps":
            answer = _slow_steps(rest[0], int(rest[1]), float(rest[2]), int(rest[3]))
        elif command == "waiting":
            answer = _waiting(rest[0], int(rest[1]), float(rest[2]))
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
