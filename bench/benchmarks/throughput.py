"""1. Engine throughput: the one-click workflow with a zero window, run by the real django-q2
cluster (Q_WORKERS=2) with the poller beside it. Purchases start through
`purchases.services.buy` in this process (no HTTP in the figure), with eager start off
(ONECLICK_EAGER_START=False) so that the cluster, not this process, runs every workflow.

Sequential: start one, wait until its run finished, start the next; the starting thread itself
asks the database every 0.5 ms whether its run finished (the cost of asking is small there, and
its delay is part of every cycle). Concurrent: keep 16 runs in flight (4 starting threads with 4
each); one watcher thread of this process asks every 2 ms which runs in flight finished (one
plain SQL query for all; asking more often, or through the ORM, takes CPU from the cluster)
and tells their starting thread.
Per-workflow latency = run.finished_at - run.created_at (both written by the engine);
throughput = workflows / (last finished_at - first created_at).

Sequential cycle, by stage (p50 over the round, in ms; the bench and the engine share one
clock): `services.buy` called -> run created (the run's created_at, set just before its
insert); run created -> `services.buy` returned (the rest of the start, its commit included);
returned -> first step started (the first checkpoint's started_at: the pusher taking the task,
the hop to a worker, the lease); first step started -> run finished (the run's finished_at, set
just before its last statement); run finished -> seen by the bench (the worker's commit, then
the bench's next look); seen -> next `services.buy` called.

CPU during the 16-concurrent round, in % of one core (from /proc: utime+stime, a process's
reaped children included): this bench process, the whole qcluster (main, sentinel, pusher,
workers, monitor), the poller, and the whole machine's busy time (/proc/stat; at most 100 x
the CPU cores). A load generator near 100 while the cluster is well below its share of the
cores means the figure measures this process, not the engine.

Eager start (the product's default, ONECLICK_EAGER_START=True), for comparison only: the same
rounds with the process that calls `services.buy` advancing the new run itself once its
transaction commits. With a zero window nothing is left to wait for, so the whole workflow runs
there, as DBOS runs a workflow in the process that starts it; the cluster stays up and takes
nothing. The goal against DBOS is judged in benchmark 6, where DBOS runs in the same run,
its rounds interleaved with these.

Floor: a no-op django-q2 task (bench.lib.noop.noop) through the same cluster and broker,
sequentially: enqueue with async_task, wait until it ran, enqueue the next. The task writes
the time it ran to a file (django-q2 saves no successful task here: save_limit -1), and this
process polls for the file every 2 ms. Latency = the time the task ran - the time just before
async_task, which like the workflows' finished_at excludes the cluster's acknowledgement
(the monitor deleting the queue row after the task returned); round trips/s = tasks / (last
ran - first enqueued). What one task hop costs, without the engine.
"""

from __future__ import annotations

import itertools
import os
import queue
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.lib import cpu, noop, workload
from bench.lib.context import BenchContext, settings_override
from bench.lib.stats import summary

POLL_INTERVAL = 0.002
SEQUENTIAL_POLL_INTERVAL = 0.0005
# Several starting threads, as several web workers would be: one thread calling services.buy
# alone would make this process the bottleneck of the 16-concurrent figure.
CONCURRENT_STARTERS = 4
VARIANT_Q_POLL = "0.005"
EAGER_LABEL = "eager start (in the process that buys)"
NOOP_LABEL = "no-op django-q2 task, sequential"


class _Watcher:
    """One thread that asks the database every `interval` which of the runs in flight finished
    (one query for all of them) and puts each finished run's id in the inbox of the thread that
    started it. With no run in flight it sleeps until one is watched, so that it does not take
    the interpreter's lock from a starter in the middle of `services.buy`. A run is handed over
    once; an error of the thread is raised again when the `with` block ends."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._lock = threading.Condition()
        self._inboxes: dict[str, queue.SimpleQueue[str]] = {}
        self.seen_at: dict[str, float] = {}  # run id -> time.time() it was seen finished
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-watcher", daemon=True)
        self._error: Exception | None = None

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join(timeout=30)
        if self._error is not None:
            raise RuntimeError("the run watcher failed") from self._error

    def watch(self, run_id: str, inbox: queue.SimpleQueue[str]) -> None:
        """Put `run_id` in `inbox` once its run has finished."""
        with self._lock:
            self._inboxes[run_id] = inbox
            self._lock.notify_all()

    def wait(self, inbox: queue.SimpleQueue[str], deadline: float) -> bool:
        """Take one finished run from `inbox`, waiting for it; False at `deadline` (monotonic) or
        once this watcher has failed, so that no starter outlives it by long."""
        while self._error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                inbox.get(timeout=min(left, 1.0))
                return True
            except queue.Empty:
                continue
        return False

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self._interval):
                self._poll()
        except Exception as exc:
            self._error = exc
        finally:
            connection.close()

    def _poll(self) -> None:
        with self._lock:
            while not self._inboxes and not self._stop.is_set():
                self._lock.wait()
            flying = list(self._inboxes)
        if not flying:
            return
        done = workload.finished_among(flying)
        seen = time.time()
        with self._lock:
            for run_id in done:
                self.seen_at[run_id] = seen
                self._inboxes.pop(run_id).put(run_id)


class _InlineWatcher:
    """The watcher of one starting thread with one run in flight: `wait` asks the database in
    that thread every `interval` whether the run finished (no hand-over between threads)."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._watched: str | None = None
        self.seen_at: dict[str, float] = {}  # run id -> time.time() it was seen finished

    def __enter__(self) -> _InlineWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def watch(self, run_id: str, inbox: queue.SimpleQueue[str]) -> None:
        """Have the next `wait` wait for `run_id`."""
        self._watched = run_id

    def wait(self, inbox: queue.SimpleQueue[str], deadline: float) -> bool:
        """Return once the watched run finished (True) or at `deadline`, monotonic (False)."""
        run_id = self._watched
        assert run_id is not None, "nothing is watched"
        while time.monotonic() < deadline:
            if workload.finished_among([run_id]):
                self.seen_at[run_id] = time.time()
                self._watched = None
                return True
            time.sleep(self._interval)
        return False


@dataclass
class _Driven:
    """What one round's starters saw: each `services.buy` call's seconds, and per run the
    time.time() its `services.buy` was called and the time the watcher saw it finished."""

    buy_seconds: list[float] = field(default_factory=list)
    called_at: dict[str, float] = field(default_factory=dict)
    returned_at: dict[str, float] = field(default_factory=dict)
    seen_at: dict[str, float] = field(default_factory=dict)


def _drive(
    ctx: BenchContext, prefix: str, count: int, in_flight: int, starters: int, time_limit: float
) -> _Driven:
    """Start `count` purchases from `starters` threads, each keeping `in_flight // starters`
    runs unfinished (a thread starts the next one as soon as the watcher hands it one of its
    runs as finished)."""
    from django.db import connection

    lock = threading.Lock()
    next_index = 0
    driven = _Driven()
    deadline = time.monotonic() + time_limit
    per_thread = max(1, in_flight // starters)

    def take() -> int | None:
        nonlocal next_index
        with lock:
            if next_index >= count or time.monotonic() >= deadline:
                return None
            next_index += 1
            return next_index - 1

    def loop(watcher: _Watcher | _InlineWatcher) -> None:
        inbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        flying = 0
        try:
            while True:
                while flying < per_thread and (index := take()) is not None:
                    called, began = time.time(), time.perf_counter()
                    run_id = workload.buy(ctx.seed, f"{prefix}-{index}")
                    returned, took = time.time(), time.perf_counter() - began
                    watcher.watch(run_id, inbox)
                    flying += 1
                    with lock:
                        driven.buy_seconds.append(took)
                        driven.called_at[run_id] = called
                        driven.returned_at[run_id] = returned
                if not flying or not watcher.wait(inbox, deadline):
                    return
                flying -= 1
        finally:
            connection.close()

    one = in_flight == 1 and starters == 1
    watching = _InlineWatcher(SEQUENTIAL_POLL_INTERVAL) if one else _Watcher(POLL_INTERVAL)
    with watching as watcher:
        threads = [
            threading.Thread(target=loop, args=(watcher,), name=f"starter-{i}")
            for i in range(starters)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    driven.seen_at = watcher.seen_at
    return driven


CYCLE_STAGES = (
    "services.buy called -> run created",
    "run created -> services.buy returned",
    "services.buy returned -> first step started",
    "first step started -> run finished",
    "run finished -> seen by the bench",
    "seen -> next services.buy called",
)


def _record_cycle_stages(ctx: BenchContext, label: str, driven: _Driven) -> None:
    """Where a sequential cycle's time goes, stage by stage (p50s, ms)."""
    from durable.models import StepCheckpoint, WorkflowRun

    run_ids = sorted(driven.called_at, key=driven.called_at.__getitem__)
    runs = {
        run_id: (created.timestamp(), finished.timestamp())
        for run_id, created, finished in WorkflowRun.objects.filter(
            pk__in=run_ids, finished_at__isnull=False
        ).values_list("pk", "created_at", "finished_at")
    }
    first_step = {
        run_id: started.timestamp()
        for run_id, started in StepCheckpoint.objects.filter(
            run_id__in=run_ids, position=0
        ).values_list("run_id", "started_at")
    }
    stages: list[list[float]] = [[] for _ in CYCLE_STAGES]
    for run_id, next_id in zip(run_ids, [*run_ids[1:], None], strict=True):
        if run_id not in runs or run_id not in first_step or run_id not in driven.seen_at:
            continue
        (created, finished), seen = runs[run_id], driven.seen_at[run_id]
        returned = driven.returned_at[run_id]
        times = [driven.called_at[run_id], created, returned, first_step[run_id], finished, seen]
        if next_id is not None:
            times.append(driven.called_at[next_id])
        for stage, (start, end) in enumerate(itertools.pairwise(times)):
            stages[stage].append((end - start) * 1000)
    for name, values in zip(CYCLE_STAGES, stages, strict=True):
        if values:
            ctx.result.add(f"{label}: cycle stage: {name}, p50", "ms", summary(values)["p50"])


def workflow_round(
    ctx: BenchContext,
    prefix: str,
    count: int,
    in_flight: int,
    time_limit: float,
    label: str,
    cpu_of: Mapping[str, int] | None = None,
) -> None:
    """Run one round of `count` purchases with `in_flight` at a time and record its figures
    under `label` (`<label>: workflows/s`, latencies, the sequential cycle's stages), and with
    `cpu_of` (role -> process-group leader) the CPU each role used meanwhile."""
    from django.conf import settings

    starters = 1 if in_flight == 1 else CONCURRENT_STARTERS
    before = cpu.snapshot(cpu_of) if cpu_of is not None else None
    driven = _drive(ctx, prefix, count, in_flight, starters, time_limit)
    shares: dict[str, float] = {}
    if cpu_of is not None and before is not None:
        shares = cpu.core_shares(before, cpu.snapshot(cpu_of))
    _record_workflows(ctx, prefix, count, label)
    # Started eagerly, a run has finished before services.buy returns: the stages do not apply.
    if in_flight == 1 and not settings.ONECLICK_EAGER_START:
        _record_cycle_stages(ctx, label, driven)
    buy_p50 = summary(driven.buy_seconds)["p50"] * 1000
    res = ctx.result
    res.add(
        f"{label}: services.buy in the bench process ({starters} thread(s)), p50", "ms", buy_p50
    )
    for role, share in shares.items():
        res.add(f"{label}: CPU, {role}", "% of a core", share)


def _record_workflows(ctx: BenchContext, prefix: str, count: int, label: str) -> None:
    """Throughput and latency of the round's workflows, from the engine's timestamps."""
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
    res.add(f"{label}: workflows/s", "wf/s", len(finished) / span)
    res.add(f"{label}: latency p50", "ms", lat["p50"])
    res.add(f"{label}: latency p99", "ms", lat["p99"])
    res.add(f"{label}: latency max", "ms", lat["max"])


def _noop_trips(count: int, time_limit: float) -> list[tuple[float, float]]:
    """Enqueue the no-op task `count` times, each once the previous one ran; returns (enqueued,
    ran) wall-clock times per trip. Stops early at `time_limit` or at a task that never ran."""
    from django.test import override_settings
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    broker = get_broker()
    deadline = time.monotonic() + time_limit
    trips: list[tuple[float, float]] = []
    # Only the engine's functions may be enqueued unless allowed (oneclick_project/task_allowlist).
    allow_noop = override_settings(Q_TASK_ALLOWLIST=[noop.TASK_PATH])
    with allow_noop, tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp:
        for i in range(count):
            path = f"{tmp}/{i}"
            sent = time.time()
            async_task(noop.TASK_PATH, path, broker=broker)
            while (ran := noop.ran_at(path)) is None and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            if ran is None:
                break
            trips.append((sent, ran))
    return trips


def _noop_round(ctx: BenchContext, count: int, time_limit: float) -> None:
    """The floor of one task hop: trips/s and latency of the sequential no-op task."""
    label = NOOP_LABEL
    trips = _noop_trips(count, time_limit)
    res = ctx.result
    if len(trips) < count:
        res.note(f"{label}: {len(trips)}/{count} no-op tasks ran before the time limit")
    if not trips:
        return
    span = trips[-1][1] - trips[0][0]
    lat = summary([(ran - sent) * 1000 for sent, ran in trips])
    res.add(f"{label}: round trips/s", "trips/s", len(trips) / span)
    res.add(f"{label}: latency p50", "ms", lat["p50"])
    res.add(f"{label}: latency p99", "ms", lat["p99"])


def run(ctx: BenchContext) -> None:
    seq = ctx.size(200, 25)
    conc = ctx.size(1000, 150)
    limit = ctx.size(300, 60)
    ctx.result.settings["purchases per round"] = (
        f"sequential {seq}, 16 concurrent {conc}; no-op tasks {seq}"
    )
    ctx.result.settings["CPU cores"] = os.cpu_count()
    with settings_override(ONECLICK_CANCEL_WINDOW_SECONDS=0.0, ONECLICK_EAGER_START=False):
        poller = ctx.start_poller()
        worker = ctx.start_worker()
        run_id = workload.buy(ctx.seed, "warmup-0")
        if workload.wait_finished([run_id], 60):
            ctx.result.note("the warm-up workflow did not finish within 60 s")
        if len(_noop_trips(1, 60)) != 1:
            ctx.result.note("the warm-up no-op task did not run within 60 s")
        cpu_of = {"qcluster (all processes)": worker.pid, "poller": poller.pid}
        for n in range(ctx.rounds):
            workflow_round(ctx, f"seq{n}", seq, 1, limit, "sequential")
            workflow_round(ctx, f"conc{n}", conc, 16, limit, "16 concurrent", cpu_of)
            _noop_round(ctx, seq, limit)
        with settings_override(ONECLICK_EAGER_START=True):
            for n in range(ctx.rounds):
                label = f"sequential, {EAGER_LABEL}"
                workflow_round(ctx, f"eagerseq{n}", seq, 1, limit, label)
                label = f"16 concurrent, {EAGER_LABEL}"
                workflow_round(ctx, f"eagerconc{n}", conc, 16, limit, label, cpu_of)
        # The same sequential loop with django-q2 polling its ORM queue every 5 ms instead of
        # the default: how much of the sequential latency is the broker's poll interval.
        worker.kill()
        ctx.start_worker(Q_POLL_SECONDS=VARIANT_Q_POLL)
        for n in range(ctx.rounds):
            label = f"sequential, Q_POLL_SECONDS={VARIANT_Q_POLL}"
            workflow_round(ctx, f"fastpoll{n}", seq, 1, limit, label)
