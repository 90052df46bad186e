"""Advancing a run: take its lease, replay, hand each command met live to its handler
(`durable.runtime.handlers`) until the run suspends or finishes.

Group commit: consecutive commands that only touch the database (signal waits, transactional
steps, the durable clock, the run's end) share one transaction, which starts by fencing the lease
(`store.fence`; each run's share is a `durable.runtime.run_transaction.RunTransaction`). It commits
before a plain step's function runs (that may call the outside world), once it has been open for
DURABLE["GROUP_COMMIT_SECONDS"], and at the end of the advance. A crash rolls the whole group
back, so every transactional step's writes still commit exactly once, together with their
checkpoints.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction

from durable import conf
from durable.core.commands import Command
from durable.core.registry import instantiate
from durable.core.replay import (
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
from durable.errors import LeaseLost, WorkflowArgumentsMismatch, WorkflowNotRegistered
from durable.models import BlockedKind, RunStatus, WorkflowRun
from durable.persistence import store
from durable.persistence.transient import forget_broken_connection, is_transient
from durable.runtime import blocked_runs, handlers, runlog
from durable.runtime.group import GroupTransaction
from durable.runtime.handlers.live import to_json
from durable.runtime.in_flight import InFlightCall
from durable.runtime.run_transaction import CallerTransaction, RunTransaction

logger = logging.getLogger("durable.runtime.executor")

# After a transient database error an advance is tried again this many times in place, after a
# random pause of up to TRANSIENT_BACKOFF_SECONDS doubling each time, before the poller takes it.
TRANSIENT_RETRIES_IN_PLACE = 3
TRANSIENT_BACKOFF_SECONDS = 0.05

_HOST = socket.gethostname()


class AdvanceOutcome(enum.Enum):
    """What one call of `advance` did."""

    BUSY = "busy"  # another executor holds the lease, or the run is not due yet
    BLOCKED = "blocked"  # this code cannot replay the run, nor can any live worker's
    # Left for later: this process lacks the run's workflow version (a live worker has it), or
    # transient database errors kept failing the advance (the poller takes it after a backoff).
    DEFERRED = "deferred"
    SUSPENDED = "suspended"
    FINISHED = "finished"
    LEASE_LOST = "lease_lost"
    # Advanced in its creating transaction up to a command that must commit first (a plain
    # step): the rest is for after that transaction commits.
    AFTER_COMMIT = "after_commit"
    # Its plain step's call was handed to this process's step pool, which advances it on once
    # the call answers (the run stays leased meanwhile).
    IN_FLIGHT = "in_flight"


def new_owner() -> str:
    """A lease token unique to one acquisition, naming the host and process for operators."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"[:64]


def advance(
    run_id: str, *, fresh: bool = False, last_write: Callable[[], None] | None = None
) -> AdvanceOutcome:
    """Advance the run as far as it can go now (`fresh`: a run just started eagerly, which may
    be taken before the poller's grace time).

    Guarantees: at most one executor at a time (lease); each command that finished before is not
    run again; the run ends, or is parked with the time it must wake, or is left to another
    executor if the lease was lost. `last_write` commits together with the advance's last
    writes (on its own if the advance left nothing to commit), or not at all.

    A transient database error (`durable.persistence.transient`) rolls the advance back and it is
    tried again after a short backoff, a few times in place, then by the poller (DEFERRED); it never
    counts as an attempt of the step that met it."""
    retries = TRANSIENT_RETRIES_IN_PLACE
    for retry in range(retries + 1):
        try:
            with _task_group(last_write) as group:
                return _advance(run_id, group, fresh=fresh)
        except Exception as exc:
            if not is_transient(exc):
                raise
            forget_broken_connection()
            logger.warning(
                "run %s: transient database error (try %d/%d): %s",
                run_id, retry + 1, retries + 1, describe(exc),
            )  # fmt: skip
            if retry < retries:
                time.sleep(random.uniform(0, TRANSIENT_BACKOFF_SECONDS * 2**retry))
    _defer(run_id, last_write)
    return AdvanceOutcome.DEFERRED


def advance_in_creating_transaction(run: WorkflowRun) -> AdvanceOutcome:
    """Advance `run`, created in the caller's still open transaction, as far as it can go
    without a commit: its waits, timers, transactional steps and its end are written in that
    transaction and commit (or roll back) with the caller's own writes, in one commit.

    Returns FINISHED, SUSPENDED (parked until its deadline or a signal), BLOCKED, or
    AFTER_COMMIT: it stopped before a command that must commit first (a plain step), and is to
    be advanced again once the caller has committed. The workflow sees only what the caller
    wrote before this call. A database error propagates: the caller's transaction has failed."""
    clock = store.shared_clock(run.created_at)
    tx = CallerTransaction(run.id, conf.seconds("LEASE_SECONDS"), clock)
    leased = store.LeasedRun(run.workflow, list(run.args), None, run.workflow_version)
    # A run created in this transaction has no checkpoint yet.
    return _advance_leased(tx, leased, time.monotonic(), history={})


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


def _advance(run_id: str, group: GroupTransaction, *, fresh: bool = False) -> AdvanceOutcome:
    """Advance one run inside `group` (opened if closed, left open for its owner to commit)."""
    owner = new_owner()
    tx = RunTransaction(run_id, owner, conf.seconds("LEASE_SECONDS"), group)
    started = time.monotonic()
    try:
        leased = tx.acquire(fresh=fresh)
        if leased is None:
            tx.rollback()
            return AdvanceOutcome.BUSY
        outcome = _advance_leased(tx, leased, started)
    except LeaseLost:
        tx.rollback()
        logger.warning("run %s lease lost; leaving it to its new owner", run_id)
        return AdvanceOutcome.LEASE_LOST
    except BaseException:
        tx.rollback()
        # Unexpected (database down, worker timeout): give the run back at once rather than
        # waiting out the lease; if even that fails, the lease expires on its own.
        with contextlib.suppress(Exception):
            store.release_lease(run_id, owner)
        raise
    tx.release()
    return outcome


def advance_after_call(call: InFlightCall, group: GroupTransaction) -> AdvanceOutcome:
    """In the step pool's completer: record the answer of the run's plain step (handed to the
    pool by an advance that leased the run as `call.owner`) and advance the run on, as that
    advance would have, inside `group` (opened if closed, left open for the caller to commit:
    the answers that came back together share one commit, and no savepoint each). Anything
    raised, LeaseLost included (the lease was lost meanwhile: the answer is to be dropped),
    leaves the group for the caller to roll back."""
    tx = RunTransaction(call.run_id, call.owner, call.ttl, group)
    tx.leased = call.leased
    outcome = _advance_leased(tx, call.leased, call.started, call.history, resumed=True)
    tx.release()
    return outcome


def _advance_leased(
    tx: RunTransaction,
    leased: store.LeasedRun,
    started: float,
    history: dict[int, Recorded] | None = None,
    *,
    resumed: bool = False,
) -> AdvanceOutcome:
    """Replay the leased run (its `history` read now unless given) and run what follows live
    (`resumed`: by the step pool's completer, for a run already logged as running)."""
    run_id = tx.run_id
    try:
        generator = instantiate(leased.workflow, run_id, list(leased.args), leased.version)
    except WorkflowNotRegistered:
        tx.begin()
        if blocked_runs.not_registered_here(run_id, tx.owner, leased.workflow, leased.version):
            return AdvanceOutcome.DEFERRED
        return AdvanceOutcome.BLOCKED
    except WorkflowArgumentsMismatch as exc:
        tx.begin()
        blocked_runs.block(run_id, tx.owner, leased.workflow, BlockedKind.CANNOT_REPLAY, str(exc))
        return AdvanceOutcome.BLOCKED
    if tx.may_commit and not resumed:  # leased (a run advanced in its creating tx never is)
        runlog.transition(run_id, leased.workflow, RunStatus.RUNNING, owner=tx.owner)
    if history is None:
        history = store.load_history(run_id)
    tx.history = dict(history)
    reached = -1  # the last position run live
    stopped_for_commit = False

    def execute(
        position: int, command: Command, recorded: Recorded | None
    ) -> Resolved | Raised | Suspend:
        nonlocal reached, stopped_for_commit
        if not tx.may_commit and handlers.commits_first(command):
            stopped_for_commit = True
            return Suspend(None, "continues once the caller's transaction commits")
        reached = position
        return handlers.execute(tx, position, command, recorded)

    outcome = drive(generator, history, execute)
    if stopped_for_commit:
        if reached >= 0:
            # Its first checkpoints commit with the caller: it is due from then on.
            store.make_due(run_id)
        return AdvanceOutcome.AFTER_COMMIT
    if isinstance(outcome, Diverged):
        # Nothing ran live before a divergence: replay stops at the first recorded mismatch.
        tx.begin()
        blocked_runs.block(
            run_id, tx.owner, leased.workflow, BlockedKind.CANNOT_REPLAY, str(outcome.error)
        )
        return AdvanceOutcome.BLOCKED
    if isinstance(outcome, Suspended) and outcome.suspend.blocks:
        # A step whose outcome stayed unknown past its horizon: an operator decides.
        tx.begin()
        blocked_runs.block(
            run_id, tx.owner, leased.workflow, BlockedKind.OUTCOME_UNKNOWN, outcome.suspend.reason
        )
        return AdvanceOutcome.BLOCKED
    if not isinstance(outcome, Suspended):
        status, result, error = _ending(outcome)
        tx.begin()
        store.finish_run(run_id, tx.owner, status, result, error)
    elapsed_ms = (time.monotonic() - started) * 1000
    if tx.handed_off:
        return AdvanceOutcome.IN_FLIGHT
    if isinstance(outcome, Suspended):
        wake_at = outcome.suspend.wake_at
        runlog.transition(
            run_id, leased.workflow, RunStatus.WAITING, step=outcome.position,
            reason=outcome.suspend.reason, wake_at=wake_at.isoformat() if wake_at else None,
            duration_ms=elapsed_ms,
        )  # fmt: skip
        return AdvanceOutcome.SUSPENDED
    runlog.transition(
        run_id, leased.workflow, status, steps=reached + 1, duration_ms=elapsed_ms,
        error=error or None,
    )  # fmt: skip
    return AdvanceOutcome.FINISHED


def _ending(outcome: Completed | Crashed) -> tuple[str, Any, str]:
    """The run's final status, result and error. A returned value JSON cannot hold is a bug in
    the workflow: the run fails with an error naming its type (raising here would roll the
    advance back, and every redelivery would meet it again)."""
    if isinstance(outcome, Crashed):
        return RunStatus.FAILED, None, outcome.error
    try:
        return RunStatus.SUCCEEDED, to_json(outcome.value), ""
    except (TypeError, ValueError) as exc:
        error = f"{type(exc).__name__}: the workflow returned a value JSON cannot hold: {exc}"
        return RunStatus.FAILED, None, error
