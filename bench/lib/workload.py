"""Purchases started through the services layer, and what the database says about them."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.lib.context import Seed
from bench.lib.memory import memory_sample
from devtools.processes import Process

FINISHED = ("succeeded", "failed", "cancelled")


def buy(seed: Seed, key: str) -> str:
    """Start one purchase as the bench user via `purchases.services.buy`; returns its run id."""
    from purchases import services

    outcome = services.buy(seed.user, key, seed.item_id)
    assert outcome.created, f"key {key} was not new"
    return outcome.purchase.run_id


def buy_many(
    seed: Seed,
    keys: Sequence[str],
    threads: int,
    time_limit: float,
    rate: float | None = None,
) -> list[float]:
    """Start purchases for `keys` from `threads` threads (each with its own connection);
    returns each call's seconds. Stops early at `time_limit`. With `rate` (purchases/s), the
    i-th purchase is not started before i / rate seconds from the start (a schedule, not a
    pause between calls: a late start does not push back the later ones)."""
    from django.db import connection

    durations: list[float] = []
    lock = threading.Lock()
    pending = enumerate(keys)
    began_all = time.monotonic()
    deadline = began_all + time_limit

    def starter() -> None:
        try:
            while time.monotonic() < deadline:
                with lock:
                    index, key = next(pending, (0, None))
                if key is None:
                    return
                if rate is not None:
                    time.sleep(max(0.0, began_all + index / rate - time.monotonic()))
                began = time.perf_counter()
                buy(seed, key)
                took = time.perf_counter() - began
                with lock:
                    durations.append(took)
        finally:
            connection.close()

    workers = [threading.Thread(target=starter, name=f"starter-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return durations


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    status: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    cancel_until: dt.datetime
    state: str


def purchases_with_prefix(seed: Seed, prefix: str) -> list[RunRow]:
    """The bench user's purchases whose key starts with `prefix`, with their runs."""
    from purchases.models import Purchase

    rows = Purchase.objects.filter(user=seed.user, key__startswith=prefix).values_list(
        "run_id",
        "run__status",
        "run__created_at",
        "run__finished_at",
        "cancel_until",
        "run__result",
    )
    return [
        RunRow(run_id, status, created, finished, until, (result or {}).get("state", ""))
        for run_id, status, created, finished, until, result in rows
    ]


def finished_among(run_ids: Sequence[str]) -> list[str]:
    """Which of `run_ids` have finished, in one plain SQL statement on this thread's connection.
    A bench that asks hundreds of times a second must not spend the machine's CPU on it: the
    ORM's query took several times the client CPU of this one (0.37-0.58 against 0.07-0.09 ms
    on PostgreSQL, measured 2026-11-26), taken from the processes being measured."""
    from durable.models import WorkflowRun
    from durable.persistence import sql

    if not run_ids:
        return []
    marks = ", ".join(["%s"] * len(run_ids))
    states = ", ".join(["%s"] * len(FINISHED))
    rows = sql.fetch_all(
        f"SELECT id FROM {WorkflowRun._meta.db_table} "
        f"WHERE id IN ({marks}) AND status IN ({states})",
        [*run_ids, *FINISHED],
    )
    return [run_id for (run_id,) in rows]


def unfinished(run_ids: Sequence[str]) -> set[str]:
    """Which of `run_ids` have not finished (queried in chunks)."""
    left: set[str] = set()
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i : i + 500]
        left.update(set(chunk) - set(finished_among(chunk)))
    return left


def wait_finished(run_ids: Sequence[str], timeout: float, interval: float = 0.2) -> set[str]:
    """Wait until every run finished or `timeout`; returns the ones still unfinished."""
    deadline = time.monotonic() + timeout
    left = unfinished(run_ids)
    while left and time.monotonic() < deadline:
        time.sleep(interval)
        left = unfinished(sorted(left))
    return left


def status_counts() -> dict[str, int]:
    """Runs by status, over the whole database."""
    from django.db.models import Count

    from durable.models import WorkflowRun

    return {
        row["status"]: row["n"]
        for row in WorkflowRun.objects.values("status").annotate(n=Count("id")).order_by()
    }


def running_leased_elsewhere() -> dict[str, int]:
    """Runs 'running' whose lease is not held by this process, split in two: those in a plain
    step's call (its checkpoint pending: on a worker's step pool, holding a slot, not the worker)
    and the others (in a task or being recorded). A lease owner is 'host:pid:token'
    (durable.runtime.executor.new_owner), so this process's pid between colons marks the leases
    it holds itself (an eager start takes none to park a purchase, but one to go on after a plain
    step)."""
    from django.db.models import Count, Exists, OuterRef

    from durable.models import StepCheckpoint, WorkflowRun

    mine = f":{os.getpid()}:"
    in_call = StepCheckpoint.objects.filter(run=OuterRef("pk"), kind="step", status="pending")
    rows = (
        WorkflowRun.objects.filter(status="running")
        .exclude(lease_owner__contains=mine)
        .annotate(in_call=Exists(in_call))
        .values("in_call")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_call = {row["in_call"]: row["n"] for row in rows}
    return {"in a call": by_call.get(True, 0), "not in a call": by_call.get(False, 0)}


def queue_depth() -> int:
    """Tasks in django-q2's ORM queue for this cluster (taken or not)."""
    from django.conf import settings
    from django_q.models import OrmQ

    return OrmQ.objects.filter(key=settings.Q_CLUSTER["name"]).count()


@dataclass
class Sampler:
    """A thread that samples, every `interval` seconds: runs by status, the django-q2 queue's
    depth, the memory of the given processes and whatever `extra` returns (merged into each
    sample). Bounded by `max_seconds`."""

    processes: list[Process]
    interval: float = 0.5
    max_seconds: float = 1800.0
    extra: Callable[[], dict[str, Any]] | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    memory_max: dict[str, tuple[int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        from django.db import connection

        started = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
                sample: dict[str, Any] = {
                    "t": time.monotonic() - started,
                    "status": status_counts(),
                    "queue": queue_depth(),
                }
                if self.extra is not None:
                    sample.update(self.extra())
                for label, (rss, pss) in memory_sample(self.processes).items():
                    old = self.memory_max.get(label, (0, 0))
                    self.memory_max[label] = (max(old[0], rss), max(old[1], pss))
                self.samples.append(sample)
                self._stop.wait(self.interval)
        finally:
            connection.close()

    def max_status(self, status: str) -> int:
        return max((s["status"].get(status, 0) for s in self.samples), default=0)

    def max_queue(self) -> int:
        return max((s["queue"] for s in self.samples), default=0)

    def max_extra(self, key: str) -> int:
        """The largest value `extra` gave for `key` over the samples (0 without samples)."""
        return max((s[key] for s in self.samples if key in s), default=0)
