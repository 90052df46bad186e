"""Advancing a run: take its lease, replay, execute commands until it suspends or finishes.

Group commit: consecutive commands that only touch the database (signal waits, transactional
steps, the durable clock, the run's end) share one transaction, which starts by fencing the lease
(`store.fence`). It commits before a plain step's function runs (that may call the outside world),
once it has been open for DURABLE["GROUP_COMMIT_SECONDS"], and at the end of the advance. A crash
rolls the whole group back, so every transactional step's writes still commit exactly once,
together with their checkpoints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from durable import blocking, conf, metrics, runlog, step_context, store
from durable.commands import Command, Now, Patch, Sleep, Step, TransactionStep, WaitForSignal
from durable.errors import (
    LeaseLost,
    StepInterrupted,
    WorkflowArgumentsMismatch,
    WorkflowNotRegistered,
)
from durable.group import GroupTransaction, RunSavepoint
from durable.lease_keeper import LeaseKeeper
from durable.models import CheckpointStatus, RunStatus
from durable.registry import instantiate
from durable.replay import (
    Completed,
    Crashed,
    Diverged,
    Raised,
    Recorded,
    Resolved,
    Suspend,
    Suspended,
    describe,
    drive,
)
from durable.step_context import StepInfo
from durable.timeouts import call_with_timeout
from durable.transient import is_transient

logger = logging.getLogger("durable.executor")

# After a transient database error an advance is tried again this many times in place, after a
# random pause of up to TRANSIENT_BACKOFF_SECONDS doubling each time, before the poller takes it.
TRANSIENT_RETRIES_IN_PLACE = 3
TRANSIENT_BACKOFF_SECONDS = 0.05

_HOST = socket.gethostname()


class Advanced(enum.Enum):
    """What one call of `advance` did."""

    BUSY = "busy"  # another executor holds the lease, or the run is not due yet
    BLOCKED = "blocked"  # this code cannot replay the run, nor can any live worker's
    # Left for later: this process lacks the run's workflow version (a live worker has it), or
    # transient database errors kept failing the advance (the poller takes it after a backoff).
    DEFERRED = "deferred"
    SUSPENDED = "suspended"
    FINISHED = "finished"
    LEASE_LOST = "lease_lost"


def new_owner() -> str:
    """A lease token unique to one acquisition, naming the host and process for operators."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"[:64]


def to_json(value: Any) -> Any:
    """The value exactly as it will come back from the database, so live and replay agree."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def advance(
    run_id: str, *, fresh: bool = False, last_write: Callable[[], None] | None = None
) -> Advanced:
    """Advance the run as far as it can go now (`fresh`: a run just started eagerly, which may
    be taken before the poller's grace time).

    Guarantees: at most one executor at a time (lease); each command that finished before is not
    run again; the run ends, or is parked with the time it must wake, or is left to another
    executor if the lease was lost. `last_write` commits together with the advance's last
    writes (on its own if the advance left nothing to commit), or not at all.

    A transient database error (`durable.transient`) rolls the advance back and it is tried
    again after a short backoff, a few times in place, then by the poller (DEFERRED); it never
    counts as an attempt of the step that met it."""
    retries = TRANSIENT_RETRIES_IN_PLACE
    for retry in range(retries + 1):
        try:
            with _task_group(last_write) as group:
                return _advance(run_id, group, fresh=fresh)
        except Exception as exc:
            if not is_transient(exc):
                raise
            _forget_broken_connection()
            logger.warning(
                "run %s: transient database error (try %d/%d): %s",
                run_id, retry + 1, retries + 1, describe(exc),
            )  # fmt: skip
            if retry < retries:
                time.sleep(random.uniform(0, TRANSIENT_BACKOFF_SECONDS * 2**retry))
    _defer(run_id, last_write)
    return Advanced.DEFERRED


def _forget_broken_connection() -> None:
    """A lost connection is closed, so the next query opens a new one."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _defer(run_id: str, last_write: Callable[[], None] | None) -> None:
    """Hand a run that kept meeting transient errors to the poller, after a backoff."""
    with transaction.atomic():
        store.retry_run_later(run_id, conf.seconds("RETRY_BACKOFF_SECONDS"))
        if last_write is not None:
            last_write()


def advance_many(
    run_ids: list[str], *, last_write: Callable[[], None] | None = None
) -> dict[str, int]:
    """Advance each run in turn, as `advance` does, sharing their group transactions: a batch of
    runs woken together commits once per DURABLE["GROUP_COMMIT_SECONDS"], not once per run. A
    run that fails takes back only its own writes and does not stop the others (the poller finds
    it again); one that met a transient error is advanced again on its own after the batch.
    Returns how many runs ended each way. `last_write` commits with the batch's last group, as
    in `advance`."""
    outcomes: dict[str, int] = {}
    again: list[str] = []
    with _task_group(last_write) as group:
        # One order for every batch: two that overlap (a task delivered twice) then take the
        # runs' row locks in the same order and cannot deadlock on PostgreSQL.
        for run_id in sorted(run_ids):
            try:
                outcome = _advance(run_id, group).value
            except Exception as exc:
                if is_transient(exc):
                    again.append(run_id)
                    continue
                logger.exception("run %s could not be advanced", run_id)
                outcome = "error"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if group.age() > conf.get("GROUP_COMMIT_SECONDS"):
                group.commit()
    for run_id in again:
        outcome = advance(run_id).value
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@contextlib.contextmanager
def _task_group(last_write: Callable[[], None] | None) -> Iterator[GroupTransaction]:
    """The group transaction of one call: `last_write` is made in it after the block, and it
    commits then; anything raised rolls it back."""
    group = GroupTransaction()
    try:
        yield group
        if last_write is not None:
            last_write()
    except BaseException:
        group.rollback()
        raise
    group.commit()


def _advance(run_id: str, group: GroupTransaction, *, fresh: bool = False) -> Advanced:
    """Advance one run inside `group` (opened if closed, left open for its owner to commit)."""
    owner = new_owner()
    runner = _LiveCommands(run_id, owner, conf.seconds("LEASE_SECONDS"), group)
    started = time.monotonic()
    try:
        leased = runner.acquire(fresh=fresh)
        if leased is None:
            runner.rollback()
            return Advanced.BUSY
        outcome = _advance_leased(runner, leased, started)
    except LeaseLost:
        runner.rollback()
        logger.warning("run %s lease lost; leaving it to its new owner", run_id)
        return Advanced.LEASE_LOST
    except BaseException:
        runner.rollback()
        # Unexpected (database down, worker timeout): give the run back at once rather than
        # waiting out the lease; if even that fails, the lease expires on its own.
        with contextlib.suppress(Exception):
            store.release_lease(run_id, owner)
        raise
    runner.release()
    return outcome


def _advance_leased(runner: _LiveCommands, leased: store.LeasedRun, started: float) -> Advanced:
    run_id = runner.run_id
    try:
        generator = instantiate(leased.workflow, run_id, list(leased.args), leased.version)
    except WorkflowNotRegistered:
        runner.begin()
        if blocking.not_registered_here(run_id, runner.owner, leased.workflow, leased.version):
            return Advanced.DEFERRED
        return Advanced.BLOCKED
    except WorkflowArgumentsMismatch as exc:
        runner.begin()
        blocking.block(run_id, runner.owner, leased.workflow, str(exc))
        return Advanced.BLOCKED
    runlog.transition(run_id, leased.workflow, RunStatus.RUNNING, owner=runner.owner)
    history = store.load_history(run_id)
    outcome = drive(generator, history, runner.execute)
    if isinstance(outcome, Diverged):
        # Nothing ran live before a divergence: replay stops at the first recorded mismatch.
        runner.begin()
        blocking.block(run_id, runner.owner, leased.workflow, str(outcome.error))
        return Advanced.BLOCKED
    if not isinstance(outcome, Suspended):
        status, result, error = _ending(outcome)
        runner.begin()
        store.finish_run(run_id, runner.owner, status, result, error)
    elapsed_ms = (time.monotonic() - started) * 1000
    if isinstance(outcome, Suspended):
        wake_at = outcome.suspend.wake_at
        runlog.transition(
            run_id, leased.workflow, RunStatus.WAITING, step=outcome.position,
            reason=outcome.suspend.reason, wake_at=wake_at.isoformat() if wake_at else None,
            duration_ms=elapsed_ms,
        )  # fmt: skip
        return Advanced.SUSPENDED
    runlog.transition(
        run_id, leased.workflow, status, steps=runner.last_position + 1, duration_ms=elapsed_ms,
        error=error or None,
    )  # fmt: skip
    return Advanced.FINISHED


def _ending(outcome: Completed | Crashed) -> tuple[str, Any, str]:
    if isinstance(outcome, Completed):
        return RunStatus.SUCCEEDED, to_json(outcome.value), ""
    return RunStatus.FAILED, None, outcome.error


class _LiveCommands:
    """Runs the commands that have no finished checkpoint, for one leased run, grouping the
    database-only ones into one fenced transaction."""

    def __init__(self, run_id: str, owner: str, ttl: dt.timedelta, group: GroupTransaction) -> None:
        self.run_id = run_id
        self.owner = owner
        self.ttl = ttl
        self.last_position = -1
        self._group = group
        self._savepoint: RunSavepoint | None = None
        self._fenced_in = -1  # the group generation this run last took or fenced its lease in
        self._started_at = timezone.now()
        self._db_clock: tuple[dt.datetime | None, float] = (None, 0.0)

    # -- the group transaction -------------------------------------------------------------------

    def acquire(self, *, fresh: bool) -> store.LeasedRun | None:
        """Take the lease as a write of the group transaction (instead of a fence): a run that
        only touches the database is then advanced in one commit."""
        if self._group.is_open:
            # Earlier runs' writes share the transaction: mark where this run's begin.
            self._savepoint = RunSavepoint(self._group)
        else:
            self._group.open()
        leased = store.acquire_lease(self.run_id, self.owner, self.ttl, fresh=fresh)
        if leased is not None:
            self._fenced_in = self._group.generation
            self._note_clock(leased.db_now)
        return leased

    def begin(self) -> None:
        """Make sure the group transaction is open and this run's lease is fenced in it."""
        if self._group.is_open and self._fenced_in == self._group.generation:
            return
        if not self._group.is_open:
            self._group.open()
        try:
            self._note_clock(store.fence(self.run_id, self.owner, self.ttl))
        except BaseException:
            self.rollback()
            raise
        self._fenced_in = self._group.generation

    def _note_clock(self, db_now: dt.datetime | None) -> None:
        self._db_clock = (db_now, time.monotonic())

    def now(self) -> dt.datetime:
        """The database's clock (PostgreSQL), read when the lease was last taken or fenced and
        carried forward by this process's monotonic clock, saving a round trip per timer."""
        db_now, read_at = self._db_clock
        if db_now is None:
            return timezone.now()
        return db_now + dt.timedelta(seconds=time.monotonic() - read_at)

    def commit(self) -> None:
        """Make everything so far durable (before a plain step calls the outside world)."""
        self._group.commit()

    def release(self) -> None:
        """This run is done: its writes stay in the group, to commit with it."""
        if self._savepoint is not None:
            self._savepoint.release()

    def rollback(self) -> None:
        """Take back this run's uncommitted writes, and only those (without a savepoint, the
        group holds nothing else)."""
        if self._savepoint is not None:
            self._savepoint.rollback()
        else:
            self._group.rollback()

    # -- commands --------------------------------------------------------------------------------

    def execute(
        self, position: int, command: Command, recorded: Recorded | None
    ) -> Resolved | Raised | Suspend:
        self.last_position = position
        self._started_at = timezone.now()
        if isinstance(command, TransactionStep):
            return self._transaction_step(position, command, recorded)
        if isinstance(command, Step):
            return self._step(position, command, recorded)
        if isinstance(command, WaitForSignal):
            return self._wait(position, command, recorded)
        if isinstance(command, Sleep):
            return self._sleep(position, command, recorded)
        if isinstance(command, Now):
            return self._now(position, command)
        if isinstance(command, Patch):
            return self._patch(position, command)
        raise TypeError(f"unknown command {command!r}")

    def _step(
        self, position: int, command: Step, recorded: Recorded | None
    ) -> Resolved | Raised | Suspend:
        attempt = (recorded.attempts if recorded else 0) + 1
        if attempt > command.max_attempts:
            # Each attempt is recorded before it starts, and the last one never came back.
            return self._step_failed(
                position, command, attempt - 1,
                StepInterrupted(f"its worker died or lost the run during attempt {attempt - 1}"),
            )  # fmt: skip
        # The attempt is counted before the call (a worker killed inside the step used it up),
        # and commits with what came before: no lock is held while the outside world is called.
        self._record_attempt(position, command, attempt)
        self.commit()
        try:
            # However long the call takes, the run stays ours (a takeover would run it twice).
            with LeaseKeeper(self.run_id, self.owner, self.ttl):
                result = to_json(self._call(position, command, attempt))
        except Exception as exc:
            if is_transient(exc):
                # Tried again without counting an attempt (`advance`).
                self._record_attempt(position, command, attempt - 1)
                self.commit()
                raise
            return self._step_failed(position, command, attempt, exc)
        self.begin()
        self._write_result(position, command, result, attempt, exists=True)
        metrics.step_finished(command.name, self._elapsed(), ok=True)
        return Resolved(result)

    def _call(self, position: int, command: Step, attempt: int) -> Any:
        """The step's function, with `durable.current_step()` telling it which step it runs."""
        with step_context.running(StepInfo(self.run_id, position, command.name, attempt)):
            if command.timeout is None:
                return command.fn(*command.args)
            return call_with_timeout(command.fn, command.args, command.timeout)

    def _record_attempt(self, position: int, command: Step, attempts: int) -> None:
        self.begin()
        store.save_checkpoint(
            self.run_id, position, name=command.name, kind=command.kind,
            status=CheckpointStatus.PENDING, attempts=attempts,
        )  # fmt: skip

    def _transaction_step(
        self, position: int, command: TransactionStep, recorded: Recorded | None
    ) -> Resolved | Raised | Suspend:
        self.begin()
        attempt = (recorded.attempts if recorded else 0) + 1
        try:
            with transaction.atomic():  # a savepoint: a failing step leaves the group intact
                result = to_json(self._call(position, command, attempt))
                self._write_result(position, command, result, attempt, exists=bool(recorded))
        except LeaseLost:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise  # the whole group is rolled back and tried again (`advance`)
            return self._step_failed(position, command, attempt, exc)
        # Slow steps commit at once, so the group never holds the database's locks for long.
        if self._group.age() > conf.get("GROUP_COMMIT_SECONDS"):
            self.commit()
        metrics.step_finished(command.name, self._elapsed(), ok=True)
        return Resolved(result)

    def _elapsed(self) -> float:
        """Seconds since the current command started."""
        return (timezone.now() - self._started_at).total_seconds()

    def _write_result(
        self, position: int, command: Step, result: Any, attempt: int, *, exists: bool
    ) -> None:
        if not exists:
            store.insert_checkpoint(
                self.run_id, position, name=command.name, kind=command.kind, result=result,
                started_at=self._started_at,
            )  # fmt: skip
        else:
            store.save_checkpoint(
                self.run_id, position, name=command.name, kind=command.kind,
                status=CheckpointStatus.DONE, result=result, attempts=attempt,
            )  # fmt: skip

    def _step_failed(
        self, position: int, command: Step, attempt: int, exc: Exception
    ) -> Raised | Suspend:
        error = describe(exc)
        metrics.step_finished(command.name, self._elapsed(), ok=False)
        final = attempt >= command.max_attempts
        logger.warning(
            "run %s step=%d name=%s attempt %d/%d failed: %s",
            self.run_id, position, command.name, attempt, command.max_attempts, error,
        )  # fmt: skip
        self.begin()
        if final:
            store.save_checkpoint(
                self.run_id, position, name=command.name, kind=command.kind,
                status=CheckpointStatus.ERROR, error=error, attempts=attempt,
            )  # fmt: skip
            return Raised(error)
        backoff = min(
            conf.get("RETRY_BACKOFF_SECONDS") * 2 ** (attempt - 1),
            conf.get("RETRY_BACKOFF_MAX_SECONDS"),
        )
        wake_at = self.now() + dt.timedelta(seconds=backoff)
        store.save_checkpoint(
            self.run_id, position, name=command.name, kind=command.kind,
            status=CheckpointStatus.PENDING, error=error, attempts=attempt,
        )  # fmt: skip
        store.suspend_run(self.run_id, self.owner, wake_at)
        return Suspend(wake_at, f"retry {command.name}")

    def _now(self, position: int, command: Now) -> Resolved:
        self.begin()
        result = self.now().isoformat()
        store.insert_checkpoint(
            self.run_id, position, name=command.name, kind=command.kind, result=result,
            started_at=self._started_at,
        )  # fmt: skip
        return Resolved(result)

    def _patch(self, position: int, command: Patch) -> Resolved:
        # Reached live: this run takes the patched branch, and its replays must too.
        self.begin()
        store.insert_checkpoint(
            self.run_id, position, name=command.name, kind=command.kind, result=True,
            started_at=self._started_at,
        )  # fmt: skip
        return Resolved(True)

    def _wait(
        self, position: int, command: WaitForSignal, recorded: Recorded | None
    ) -> Resolved | Suspend:
        self.begin()
        now = self.now()
        if recorded is not None:
            deadline = recorded.deadline
        elif command.until is not None:
            deadline = command.until
        else:
            deadline = now + dt.timedelta(seconds=command.timeout or 0)
        signal = store.consume_signal(self.run_id, command.signal, position)
        if signal is not None:
            result: dict[str, Any] = {"signal_id": signal.pk, "payload": signal.payload}
            metrics.signal_resumed((timezone.now() - signal.sent_at).total_seconds())
        elif deadline is not None and now >= deadline:
            result = {"timed_out": True}
            metrics.wait_timed_out((now - deadline).total_seconds())
        else:
            if recorded is None:
                store.save_checkpoint(
                    self.run_id, position, name=command.name, kind=command.kind,
                    status=CheckpointStatus.PENDING, attempts=0, deadline=deadline,
                )  # fmt: skip
            store.suspend_run(self.run_id, self.owner, deadline, command.signal)
            return Suspend(deadline, f"waiting for {command.signal!r}")
        if recorded is not None:
            # A sender may have decided the timeout since the history was read: its word stands.
            return Resolved(store.complete_pending_checkpoint(self.run_id, position, result))
        self._finish_timer(position, command, recorded, result, deadline)
        return Resolved(result)

    def _sleep(
        self, position: int, command: Sleep, recorded: Recorded | None
    ) -> Resolved | Suspend:
        self.begin()
        now = self.now()
        if recorded is not None and recorded.deadline is not None:
            deadline = recorded.deadline
        else:
            deadline = now + dt.timedelta(seconds=command.seconds)
        if now < deadline:
            if recorded is None:
                store.save_checkpoint(
                    self.run_id, position, name=command.name, kind=command.kind,
                    status=CheckpointStatus.PENDING, attempts=0, deadline=deadline,
                )  # fmt: skip
            store.suspend_run(self.run_id, self.owner, deadline)
            return Suspend(deadline, "sleeping")
        self._finish_timer(position, command, recorded, None, deadline)
        return Resolved(None)

    def _finish_timer(
        self,
        position: int,
        command: Command,
        recorded: Recorded | None,
        result: Any,
        deadline: dt.datetime | None,
    ) -> None:
        if recorded is None:
            store.insert_checkpoint(
                self.run_id, position, name=command.name, kind=command.kind, result=result,
                attempts=0, deadline=deadline, started_at=self._started_at,
            )  # fmt: skip
        else:
            store.save_checkpoint(
                self.run_id, position, name=command.name, kind=command.kind,
                status=CheckpointStatus.DONE, result=result, attempts=0, deadline=deadline,
            )  # fmt: skip
