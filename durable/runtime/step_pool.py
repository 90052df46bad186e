"""Many plain steps in flight in one worker process.

A django-q2 worker process runs one task at a time. With the step pool on (in every worker
process, `enable`), a task that reaches a plain step records the attempt, commits, and hands the
call to one of this process's step threads instead of waiting for it: the task ends and the
worker takes its next one. When the call answers, the process's completer thread records the
answer and advances the run on, in a transaction of its own, under the lease the task took.

- At most DURABLE["STEPS_IN_FLIGHT"] calls are in flight per process: a slot each, from before
  the attempt is recorded until its answer is. A task that finds every slot taken waits for one,
  for at most DURABLE["STEP_SLOT_WAIT_SECONDS"] in all, then hands its run back to the queue.
- One renewer thread renews the leases of all the runs the process has in flight together: one
  statement per third of the lease, on its own connection (reopened after a failure).
- A waiting call holds no database connection (a step thread closes what its function opened);
  the process holds three at most for the pool's sake: its task's, the completer's, the renewer's.
- Before the process exits (django-q2 recycles it, its task timed out, the cluster stops) it
  drains: no new call starts (a run that reaches one is handed back), and the calls in flight
  are waited for and recorded. A process killed outright loses nothing either: each attempt was
  recorded before its call, and its runs' leases lapse and are taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, connections

from durable import conf
from durable.errors import LeaseLost
from durable.persistence import store
from durable.persistence.transient import forget_broken_connection, is_transient
from durable.runtime import metrics
from durable.runtime.group import GroupTransaction
from durable.runtime.in_flight import Answer, InFlightCall

logger = logging.getLogger("durable.runtime.step_pool")


# The completer's pause after a transient error while recording an answer, doubling to the most.
RECORD_PAUSE_SECONDS = 0.05
RECORD_PAUSE_MAX_SECONDS = 1.0
# Answers that came back together are recorded in one group transaction, up to this many.
RECORD_BATCH = 25

_pool: StepPool | None = None
_thread = threading.local()  # .answer: (run_id, position, Answer) being recorded; .slot: held


class StepPool:
    """This process's step threads, completer and renewer (see the module's docstring)."""

    def __init__(
        self,
        limit: int,
        ttl: dt.timedelta,
        slot_wait: float,
        record: Callable[[InFlightCall, GroupTransaction], object],
    ) -> None:
        self.limit = limit
        self._record_answer = record
        self.ttl = ttl
        self.slot_wait = slot_wait
        metrics.STEP_SLOTS.set(limit)
        self._state = threading.Condition()
        self._slots_taken = 0
        # By the call's identity: a run's next call, handed off by the completer while the
        # previous one is being settled, has the same lease owner.
        self._calls: dict[int, InFlightCall] = {}
        self._stopping = False
        self._answers: queue.SimpleQueue[tuple[InFlightCall, Answer] | None] = queue.SimpleQueue()
        self._callers = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="durable step")
        self._renewal_stop = threading.Event()
        self._completer = threading.Thread(target=self._complete, name="durable completer")
        self._renewer = threading.Thread(target=self._renew, name="durable renewer", daemon=True)
        self._completer.daemon = True
        self._completer.start()
        self._renewer.start()
        # Runs before the interpreter joins its threads at exit, and before ThreadPoolExecutor's
        # own exit hook (registered earlier, called later).
        threading._register_atexit(self.drain)  # type: ignore[attr-defined]

    # --- slots ----------------------------------------------------------------------------------

    def reserve(self, *, wait: bool = False) -> bool:
        """Take a slot for a call: the one the completer holds for the call it just recorded,
        else a free one, waiting for one (`wait`) until the current task's slot-wait budget is
        spent. False when none came (or the process is draining)."""
        deadline = getattr(_thread, "slot_deadline", None)
        with self._state:
            while True:
                if self._stopping:
                    return False
                if getattr(_thread, "slot", False):
                    _thread.slot = False
                    return True
                if self._slots_taken < self.limit:
                    self._slots_taken += 1
                    metrics.STEP_SLOTS_TAKEN.inc()
                    return True
                left = (deadline or 0.0) - time.monotonic()
                if not wait or left <= 0:
                    return False
                self._state.wait(left)

    def release(self) -> None:
        """Give a slot back."""
        with self._state:
            self._slots_taken -= 1
            metrics.STEP_SLOTS_TAKEN.dec()
            self._state.notify_all()

    def in_flight(self) -> int:
        """Calls running or waiting for their answer to be recorded."""
        with self._state:
            return self._slots_taken

    # --- calls ----------------------------------------------------------------------------------

    def submit(self, call: InFlightCall, fn: Callable[[], Any]) -> None:
        """Run `fn` (the step's call) on a step thread, its run's lease renewed meanwhile; its
        answer is recorded by the completer. The caller holds a slot for it."""
        with self._state:
            self._calls[id(call)] = call
        self._callers.submit(self._call, call, fn)

    def _call(self, call: InFlightCall, fn: Callable[[], Any]) -> None:
        try:
            answer = Answer(call.attempt, time.monotonic() - call.started, value=fn())
        except BaseException as exc:  # even SystemExit: the slot and the lease must come back
            error = (
                exc if isinstance(exc, Exception) else RuntimeError(f"{type(exc).__name__}: {exc}")
            )
            answer = Answer(call.attempt, time.monotonic() - call.started, error=error)
        finally:
            connections.close_all()  # whatever the function opened, in this thread
        self._answers.put((call, answer))

    def _complete(self) -> None:
        while (item := self._answers.get()) is not None:
            batch = [item]
            while len(batch) < RECORD_BATCH:
                try:
                    more = self._answers.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._answers.put(None)  # the stop marker, for the next turn
                    break
                batch.append(more)
            holding = {call.owner for call, _ in batch}  # calls whose slot is still theirs
            try:
                self._record(batch, holding)
            except Exception:
                logger.exception("answers of %d step(s) could not be recorded", len(batch))
            finally:
                self._settle([call for call, _ in batch], holding)
        connection.close()

    def _settle(self, calls: list[InFlightCall], holding: set[str]) -> None:
        """These calls' answers are recorded (or given up): their leases are no longer the
        renewer's to keep, and the slots they still hold are free."""
        with self._state:
            for call in calls:
                self._calls.pop(id(call), None)
        for call in calls:
            if call.owner in holding:
                holding.discard(call.owner)
                self.release()

    def _record(self, batch: list[tuple[InFlightCall, Answer]], holding: set[str]) -> None:
        """Record the answers and advance their runs on, in one group transaction (a commit per
        DURABLE["GROUP_COMMIT_SECONDS"]), without a savepoint per run: should one fail, the
        group is rolled back and the others are recorded again without it (its lease lost: its
        answer is dropped; another error: logged, and its run given back to the poller). A
        transient database error rolls back what was not committed yet, which is tried again in
        place, the answers kept, for as long as each run's lease is known ours (running a call
        again would repeat its effect and count an attempt). Each call's slot passes to its
        run's next plain step, or is given back as soon as its answer is committed."""
        pause = RECORD_PAUSE_SECONDS
        left = list(batch)
        while left:
            group = GroupTransaction()
            done = 0  # how many of `left` have their writes committed
            current: InFlightCall | None = None  # the call being recorded
            try:
                for n, (call, answer) in enumerate(left):
                    current = call
                    call.recording = True
                    opened = group.generation + (0 if group.is_open else 1)
                    self._record_one(call, answer, group, holding)
                    current = None
                    # Committed inside (a run that found no free slot commits before it waits):
                    # what came before must never be recorded again (a run's next call may be
                    # in flight already).
                    committed = not group.is_open or group.generation != opened
                    if committed or group.age() > conf.get("GROUP_COMMIT_SECONDS"):
                        group.commit()
                        self._settle([c for c, _ in left[done : n + 1]], holding)
                        done = n + 1
                group.commit()
                self._settle([c for c, _ in left[done:]], holding)
                return
            except Exception as exc:
                group.rollback()
                left = left[done:]
                for call, _ in left:
                    call.recording = False
                if current is not None and not is_transient(exc):
                    self._give_up(current, exc, holding)
                    left = [(c, a) for c, a in left if c is not current]
                    continue
                if not is_transient(exc):
                    raise
                forget_broken_connection()
                logger.warning(
                    "recording %d step answer(s) met a transient error, trying again: %s",
                    len(left), exc,
                )  # fmt: skip
            expiring = [c for c, _ in left if c.lost or c.lease_left() < pause * 2]
            for call in expiring:
                logger.warning("run %s: its step's answer is dropped", call.run_id)
            self._settle(expiring, holding)
            left = [(c, a) for c, a in left if c not in expiring]
            time.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_MAX_SECONDS)

    def _give_up(self, call: InFlightCall, exc: Exception, holding: set[str]) -> None:
        """The answer of `call` cannot be recorded (its writes were rolled back)."""
        if isinstance(exc, LeaseLost):
            logger.warning(
                "run %s lease lost while its step ran; its answer is dropped", call.run_id
            )
        else:
            logger.error(
                "run %s: its step's answer could not be recorded", call.run_id, exc_info=exc
            )
            # Given back at once rather than when the lease lapses; if even that fails, it lapses.
            with contextlib.suppress(Exception):
                store.release_lease(call.run_id, call.owner)
        self._settle([call], holding)

    def _record_one(
        self, call: InFlightCall, answer: Answer, group: GroupTransaction, holding: set[str]
    ) -> None:
        _thread.answer = (call.run_id, call.position, answer)
        # The call's slot, for a next plain step of the same run (`reserve` takes it).
        _thread.slot = call.owner in holding
        try:
            self._record_answer(call, group)
        finally:
            _thread.answer = None
            if not _thread.slot:
                holding.discard(call.owner)
            _thread.slot = False

    # --- leases ---------------------------------------------------------------------------------

    def _renew(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._renewal_stop.wait(interval):
            self.renew_once()
        connection.close()

    def renew_once(self) -> None:
        """Renew the leases of every call in flight, in one statement; a call whose lease was
        not renewed is marked lost (its answer will be dropped), unless it was recorded
        meanwhile or is being recorded (its run's lease released by the recording commit)."""
        with self._state:
            calls = list(self._calls.values())
        if not calls:
            return
        try:
            renewed = store.renew_leases([call.owner for call in calls], self.ttl)
        except Exception:
            logger.exception("renewing %d leases failed; trying again", len(calls))
            # This thread's connection skips Django's per-request health checks: a dropped one
            # would fail every renewal from then on.
            connection.close()
            return
        now = time.monotonic()
        with self._state:
            # A call recorded meanwhile is no longer running: not lost.
            calls = [call for call in calls if id(call) in self._calls]
        for call in calls:
            if call.owner in renewed:
                call.renewed_at = now
            elif not call.lost and not call.recording:
                call.lost = True
                logger.warning(
                    "run %s: lease lost while its step ran; its answer will be dropped",
                    call.run_id,
                )

    # --- exit -----------------------------------------------------------------------------------

    def drain(self) -> None:
        """Stop taking calls, wait for those in flight to be recorded, stop the threads."""
        with self._state:
            self._stopping = True
            while self._slots_taken:
                logger.info("draining: %d step(s) in flight", self._slots_taken)
                self._state.wait(10.0)
        self._answers.put(None)
        self._completer.join()
        self._renewal_stop.set()
        self._renewer.join()
        self._callers.shutdown()


def enable(
    record: Callable[[InFlightCall, GroupTransaction], object], task_timeout: float | None
) -> StepPool:
    """Turn the pool on in this process (a django-q2 worker process whose tasks may last
    `task_timeout` seconds), once. `record(call, group)` records a call's answer (found with
    `take_answer`) and advances its run on inside `group`: `executor.advance_after_call`."""
    global _pool
    if _pool is None:
        slot_wait = conf.get("STEP_SLOT_WAIT_SECONDS")
        if task_timeout is not None:
            # A task's own work is a few statements per run: waiting for slots is what could
            # take long, and django-q2 stops a task (and its process) at its timeout.
            slot_wait = min(slot_wait, task_timeout / 4)
        limit = int(conf.get("STEPS_IN_FLIGHT"))
        _pool = StepPool(limit, conf.seconds("LEASE_SECONDS"), slot_wait, record)
    return _pool


def current() -> StepPool | None:
    """The pool, where a plain step met in this thread may be handed to it: a worker process's
    task or its completer; None elsewhere (the step is then called in place)."""
    return _pool


@contextlib.contextmanager
def task() -> Iterator[None]:
    """One engine task: the slot-wait budget of its runs, shared, starts now."""
    _thread.slot_deadline = time.monotonic() + (_pool.slot_wait if _pool else 0.0)
    try:
        yield
    finally:
        _thread.slot_deadline = None


def take_answer(run_id: str, position: int) -> Answer | None:
    """The answer the completer is recording for the step at `position` of `run_id`, once."""
    pending = getattr(_thread, "answer", None)
    if pending is None or pending[:2] != (run_id, position):
        return None
    _thread.answer = None
    return pending[2]
