"""Plain and transactional steps: each attempt counted, the function called (with its time
limit, its lease kept), its result recorded, a failure retried after a backoff."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction

from durable import conf
from durable.core import step_context
from durable.core.commands import Step, TransactionStep
from durable.core.replay import Raised, Resolved, Suspend, describe
from durable.core.step_context import StepInfo
from durable.errors import LeaseLost, StepInterrupted
from durable.models import CheckpointStatus
from durable.persistence import store
from durable.persistence.transient import is_transient
from durable.runtime import metrics
from durable.runtime.handlers.live import LiveCommand, to_json
from durable.runtime.lease_keeper import LeaseKeeper
from durable.runtime.timeouts import call_with_timeout

# The executor's log: where operators already look for a run's failed attempts.
logger = logging.getLogger("durable.runtime.executor")


def run_step(live: LiveCommand[Step]) -> Resolved | Raised | Suspend:
    """A plain step: at least once, outside any transaction, the run's lease kept meanwhile."""
    command, tx = live.command, live.tx
    attempt = (live.recorded.attempts if live.recorded else 0) + 1
    if attempt > command.max_attempts:
        # Each attempt is recorded before it starts, and the last one never came back.
        return _failed(
            live, attempt - 1,
            StepInterrupted(f"its worker died or lost the run during attempt {attempt - 1}"),
        )  # fmt: skip
    # The attempt is counted before the call (a worker killed inside the step used it up),
    # and commits with what came before: no lock is held while the outside world is called.
    _record_attempt(live, attempt)
    tx.commit()
    try:
        # However long the call takes, the run stays ours (a takeover would run it twice).
        with LeaseKeeper(tx.run_id, tx.owner, tx.ttl):
            result = to_json(_call(live, attempt))
    except Exception as exc:
        if is_transient(exc):
            # Tried again without counting an attempt (`executor.advance`).
            _record_attempt(live, attempt - 1)
            tx.commit()
            raise
        return _failed(live, attempt, exc)
    tx.begin()
    live.finish(result, attempts=attempt)
    metrics.step_finished(command.name, live.elapsed(), ok=True)
    return Resolved(result)


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


def _record_attempt(live: LiveCommand[Step], attempts: int) -> None:
    live.tx.begin()
    live.save(CheckpointStatus.PENDING, attempts=attempts)


def _failed(live: LiveCommand[Step], attempt: int, exc: Exception) -> Raised | Suspend:
    """Record a failed attempt: the step's final error, or a retry after a backoff."""
    command, tx = live.command, live.tx
    error = describe(exc)
    metrics.step_finished(command.name, live.elapsed(), ok=False)
    final = attempt >= command.max_attempts
    logger.warning(
        "run %s step=%d name=%s attempt %d/%d failed: %s",
        tx.run_id, live.position, command.name, attempt, command.max_attempts, error,
    )  # fmt: skip
    tx.begin()
    if final:
        live.save(CheckpointStatus.ERROR, error=error, attempts=attempt)
        return Raised(error)
    backoff = min(
        conf.get("RETRY_BACKOFF_SECONDS") * 2 ** (attempt - 1),
        conf.get("RETRY_BACKOFF_MAX_SECONDS"),
    )
    wake_at = tx.now() + dt.timedelta(seconds=backoff)
    live.save(CheckpointStatus.PENDING, error=error, attempts=attempt)
    store.suspend_run(tx.run_id, tx.owner, wake_at)
    return Suspend(wake_at, f"retry {command.name}")
