"""Plain and transactional steps: each attempt counted, the function called (with its time
limit, its lease kept), its result recorded, a failure retried after a backoff."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.db import transaction

from durable import conf
from durable.core import step_context
from durable.core.commands import Step, TransactionStep
from durable.core.replay import Raised, Resolved, Suspend, describe
from durable.core.step_context import StepInfo
from durable.errors import LeaseLost, OutcomeUnknown, StepInterrupted, StepTimedOut
from durable.models import CheckpointStatus
from durable.persistence import store
from durable.persistence.transient import forget_broken_connection, is_transient
from durable.runtime import blocked_runs, metrics, step_pool
from durable.runtime.handlers.live import (
    NO_UNKNOWN_OUTCOMES,
    LiveCommand,
    UnknownOutcomes,
    to_json,
)
from durable.runtime.in_flight import Answer, InFlightCall
from durable.runtime.lease_keeper import LeaseKeeper
from durable.runtime.timeouts import call_with_timeout

# The executor's log: where operators already look for a run's failed attempts.
logger = logging.getLogger("durable.runtime.executor")

# A step's result met a transient error while being recorded: tried again after this pause,
# doubling up to the maximum, while the lease lasts.
RECORD_RETRY_PAUSE_SECONDS = 0.05
RECORD_RETRY_PAUSE_MAX_SECONDS = 1.0

# What a step with `unknown_for` takes for an attempt whose effect may or may not have happened
# (a worker that died during the attempt is one too: its attempt stays presumed unknown).
UNKNOWN_OUTCOMES = (OutcomeUnknown, StepTimedOut)


def run_step(live: LiveCommand[Step]) -> Resolved | Raised | Suspend:
    """A plain step: at least once, outside any transaction, the run's lease kept meanwhile.
    In a worker process the call is handed to the process's step pool (`durable.runtime.step_pool`),
    which records its answer and advances the run on; elsewhere it is called in place.
    With `unknown_for`, attempts whose outcome is unknown do not count (`_unknown_outcome`)."""
    command, tx = live.command, live.tx
    answer = step_pool.take_answer(tx.run_id, live.position)
    if answer is not None:
        return _record_answer(live, answer)
    attempt = (live.recorded.attempts if live.recorded else 0) + 1
    unknown = UnknownOutcomes.of(live.recorded)
    if attempt - unknown.attempts > command.max_attempts:
        # Each attempt is recorded before it starts, and the last one never came back.
        return _failed(
            live, attempt - 1,
            StepInterrupted(f"its worker died or lost the run during attempt {attempt - 1}"),
            unknown,
        )  # fmt: skip
    presumed = unknown
    if command.unknown_for is not None:
        tx.begin()
        if _past_horizon(live, unknown):
            return _blocked(live, attempt - 1, live.recorded.error if live.recorded else None)
        # Presumed of unknown outcome until it answers: one whose worker dies stays so.
        presumed = unknown.one_more(tx.now())
    pool = step_pool.current()
    if pool is not None and tx.leased is not None:
        return _hand_to_pool(live, attempt, presumed, pool, tx.leased)
    # The attempt is counted before the call (a worker killed inside the step used it up),
    # and commits with what came before: no lock is held while the outside world is called.
    _record_attempt(live, attempt, presumed)
    tx.commit()
    # However long the call takes, the run stays ours (a takeover would run it twice).
    with LeaseKeeper(tx.run_id, tx.owner, tx.ttl) as keeper:
        try:
            result = to_json(_call(live, attempt))
        except Exception as exc:
            # The function's own error, a transient database error included: the attempt was
            # made and its effect may have happened, so it counts. Only the engine's own
            # bookkeeping goes uncounted.
            forget_broken_connection()
            return _attempt_failed(live, attempt, exc, presumed)
        _record_result(live, result, attempt, _definite(live, presumed), keeper)
    metrics.step_finished(command.name, live.elapsed(), ok=True)
    return Resolved(result)


def _hand_to_pool(
    live: LiveCommand[Step],
    attempt: int,
    presumed: UnknownOutcomes,
    pool: step_pool.StepPool,
    leased: store.LeasedRun,
) -> Suspend:
    """Record the attempt and hand the call to the pool, the run's lease kept by its renewer;
    with no slot free within the task's budget, give the run back to the queue instead."""
    tx = live.tx
    if not pool.reserve():
        tx.commit()  # nothing held while waiting for a slot
        if not pool.reserve(wait=True):
            tx.begin()
            wake_at = tx.now()
            store.defer_run(tx.run_id, tx.owner, wake_at)
            return Suspend(wake_at, "every step slot of the worker was taken")
    try:
        _record_attempt(live, attempt, presumed)
    except BaseException:
        pool.release()
        raise
    # The call starts once the attempt has committed (with the task's acknowledgement, or the
    # other answers recorded with this one): never before, and not at all if it rolls back.
    history = None if tx.history is None else dict(tx.history)
    call = InFlightCall(tx.run_id, tx.owner, tx.ttl, leased, live.position, attempt, history)

    def start() -> None:
        try:
            pool.submit(call, lambda: to_json(_call(live, attempt)))
        except BaseException:
            pool.release()  # the lease lapses and the attempt counts, as after a crash
            raise

    tx.after_commit(start, pool.release)
    tx.handed_off = True
    return Suspend(None, "its step is in flight")


def _record_answer(live: LiveCommand[Step], answer: Answer) -> Resolved | Raised | Suspend:
    """The answer a pooled call came back with, recorded as an attempt done in place would be
    (inside the run's transaction, which the completer commits or tries again). The checkpoint
    read holds the attempt as recorded when it started (presumed unknown with `unknown_for`)."""
    presumed = UnknownOutcomes.of(live.recorded)
    if answer.error is not None:
        return _attempt_failed(live, answer.attempt, answer.error, presumed, answer.seconds)
    live.tx.begin()
    live.finish(answer.value, attempts=answer.attempt, unknown=_definite(live, presumed))
    metrics.step_finished(live.command.name, answer.seconds, ok=True)
    return Resolved(answer.value)


def _record_result(
    live: LiveCommand[Step],
    result: Any,
    attempt: int,
    unknown: UnknownOutcomes,
    keeper: LeaseKeeper,
) -> None:
    """Commit the step's result at once. The call's effect has happened: a transient database
    error while recording it is tried again in place, for as long as the lease is known ours,
    rather than rolling the advance back (which would run the step again and count the attempt,
    failing a step whose effect happened on its last attempt)."""
    tx = live.tx
    pause = RECORD_RETRY_PAUSE_SECONDS
    while True:
        try:
            tx.begin()
            live.finish(result, attempts=attempt, unknown=unknown)
            tx.commit()
            return
        except LeaseLost:
            raise
        except Exception as exc:
            tx.rollback()
            lease_left = tx.ttl.total_seconds() - (time.monotonic() - keeper.renewed_at)
            if not is_transient(exc) or keeper.lost or lease_left < pause * 2:
                raise
            forget_broken_connection()
            logger.warning(
                "run %s step=%d: recording its result met a transient error, trying again: %s",
                tx.run_id, live.position, describe(exc),
            )  # fmt: skip
        time.sleep(pause)
        pause = min(pause * 2, RECORD_RETRY_PAUSE_MAX_SECONDS)


def run_transaction_step(live: LiveCommand[TransactionStep]) -> Resolved | Raised | Suspend:
    """A transactional step: its function's writes and its checkpoint commit together."""
    live.tx.begin()
    attempt = (live.recorded.attempts if live.recorded else 0) + 1
    try:
        with transaction.atomic():  # a savepoint: a failing step leaves the group intact
            result = to_json(_call(live, attempt))
            live.finish(result, attempts=attempt)
    except LeaseLost:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise  # the whole group is rolled back and tried again (`executor.advance`)
        return _failed(live, attempt, exc)
    live.tx.commit_if_old()
    metrics.step_finished(live.command.name, live.elapsed(), ok=True)
    return Resolved(result)


def _call(live: LiveCommand[Step], attempt: int) -> Any:
    """The step's function, with `durable.current_step()` telling it which step it runs."""
    command = live.command
    with step_context.running(StepInfo(live.tx.run_id, live.position, command.name, attempt)):
        if command.timeout is None:
            return command.fn(*command.args)
        return call_with_timeout(command.fn, command.args, command.timeout)


def _record_attempt(live: LiveCommand[Step], attempts: int, unknown: UnknownOutcomes) -> None:
    live.tx.begin()
    live.save(CheckpointStatus.PENDING, attempts=attempts, unknown=unknown)


def _definite(live: LiveCommand[Step], presumed: UnknownOutcomes) -> UnknownOutcomes:
    """The unknown outcomes once the attempt presumed unknown (with `unknown_for`) answered
    definitely: one fewer, and no horizon if it was the first."""
    if live.command.unknown_for is None or presumed.attempts == 0:
        return presumed
    return presumed.one_fewer()


def _attempt_failed(
    live: LiveCommand[Step],
    attempt: int,
    exc: Exception,
    presumed: UnknownOutcomes,
    seconds: float | None = None,
) -> Raised | Suspend:
    """An attempt that raised: an unknown outcome (with `unknown_for`), or a failed attempt."""
    if live.command.unknown_for is not None and isinstance(exc, UNKNOWN_OUTCOMES):
        return _unknown_outcome(live, attempt, exc, presumed, seconds)
    return _failed(live, attempt, exc, _definite(live, presumed), seconds=seconds)


def _failed(
    live: LiveCommand[Step],
    attempt: int,
    exc: Exception,
    unknown: UnknownOutcomes = NO_UNKNOWN_OUTCOMES,
    *,
    seconds: float | None = None,
) -> Raised | Suspend:
    """Record a failed attempt (that took `seconds`, by default since the command was met), one
    of `max_attempts` (the `unknown` outcomes before it do not count): the step's final error,
    or a retry after a backoff."""
    command, tx = live.command, live.tx
    error = describe(exc)
    metrics.step_finished(command.name, live.elapsed() if seconds is None else seconds, ok=False)
    counted = attempt - unknown.attempts
    logger.warning(
        "run %s step=%d name=%s attempt %d/%d failed: %s",
        tx.run_id, live.position, command.name, counted, command.max_attempts, error,
    )  # fmt: skip
    tx.begin()
    if counted >= command.max_attempts:
        live.save(CheckpointStatus.ERROR, error=error, attempts=attempt, unknown=unknown)
        return Raised(error)
    return _retry_later(live, attempt, error, unknown)


def _unknown_outcome(
    live: LiveCommand[Step],
    attempt: int,
    exc: Exception,
    unknown: UnknownOutcomes,
    seconds: float | None = None,
) -> Suspend:
    """Record an attempt whose outcome is unknown (`unknown` counts it): retried after a
    backoff, without using up an attempt, until the horizon; past it the run is blocked."""
    command, tx = live.command, live.tx
    error = describe(exc)
    metrics.step_finished(command.name, live.elapsed() if seconds is None else seconds, ok=False)
    logger.warning(
        "run %s step=%d name=%s attempt %d: outcome unknown (%d so far, since %s): %s",
        tx.run_id, live.position, command.name, attempt, unknown.attempts,
        unknown.since.isoformat() if unknown.since else "?", error,
    )  # fmt: skip
    tx.begin()
    if _past_horizon(live, unknown):
        live.save(CheckpointStatus.PENDING, error=error, attempts=attempt, unknown=unknown)
        return _blocked(live, attempt, error)
    return _retry_later(live, attempt, error, unknown)


def _retry_later(
    live: LiveCommand[Step], attempt: int, error: str, unknown: UnknownOutcomes
) -> Suspend:
    """Inside the fenced group: record the attempt's error and park the run until its retry,
    RETRY_BACKOFF_SECONDS doubling with each attempt, capped by RETRY_BACKOFF_MAX_SECONDS."""
    command, tx = live.command, live.tx
    backoff = min(
        conf.get("RETRY_BACKOFF_SECONDS") * 2 ** (attempt - 1),
        conf.get("RETRY_BACKOFF_MAX_SECONDS"),
    )
    wake_at = tx.now() + dt.timedelta(seconds=backoff)
    live.save(CheckpointStatus.PENDING, error=error, attempts=attempt, unknown=unknown)
    store.suspend_run(tx.run_id, tx.owner, wake_at)
    return Suspend(wake_at, f"retry {command.name}")


def _past_horizon(live: LiveCommand[Step], unknown: UnknownOutcomes) -> bool:
    """Whether the step's `unknown_for` seconds have passed since its first unknown outcome (by
    the database's clock, read with the fence)."""
    assert live.command.unknown_for is not None
    if unknown.since is None:
        return False
    return live.tx.now() >= unknown.since + dt.timedelta(seconds=live.command.unknown_for)


def _blocked(live: LiveCommand[Step], attempt: int, error: str | None) -> Suspend:
    """The run must wait for an operator: the step's outcome stayed unknown past its horizon."""
    last = error or f"its worker died or lost the run during attempt {attempt}"
    reason = (
        f"{blocked_runs.OUTCOME_UNKNOWN}: step {live.command.name!r} (position {live.position}) "
        f"for {live.command.unknown_for:g}s; last error: {last}"
    )
    return Suspend(None, reason, blocks=True)
