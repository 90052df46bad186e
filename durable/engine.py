"""The engine's public operations for applications: start runs, read them, send them workflow
signals, cancel them, and read the engine's clock."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Expression

from durable import conf
from durable.core.registry import WorkflowFunction, latest_version, workflow_name
from durable.errors import RunConflict
from durable.models import RunStatus, WorkflowRun, WorkflowSignal
from durable.persistence import store
from durable.runtime import runlog
from durable.runtime.executor import (
    AdvanceOutcome,
    advance,
    advance_in_creating_transaction,
    to_json,
)
from durable.transport import dispatch

logger = logging.getLogger("durable.engine")


@dataclass(frozen=True, slots=True)
class RunHandle:
    """A snapshot of a run, as callers read it."""

    run_id: str
    workflow: str
    status: str
    result: Any
    error: str
    wait_deadline: dt.datetime | None
    waiting_for: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    version: int = 1
    blocked_reason: str = ""

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

    @classmethod
    def from_run(cls, run: WorkflowRun) -> RunHandle:
        return cls(
            run_id=run.id,
            workflow=run.workflow,
            status=run.status,
            result=run.result,
            error=run.error,
            wait_deadline=run.wake_at if run.waiting_signal else None,
            waiting_for=run.waiting_signal,
            created_at=run.created_at,
            finished_at=run.finished_at,
            version=run.workflow_version,
            blocked_reason=run.blocked_reason if run.status == RunStatus.BLOCKED else "",
        )


@dataclass(frozen=True, slots=True)
class SignalResult:
    """`accepted`: the run's wait will see the workflow signal. Otherwise `reason` says why not.
    `run`: the run as the verdict left it."""

    accepted: bool
    reason: str
    run: RunHandle


def start(
    run_id: str, workflow: WorkflowFunction | str, *args: Any, eager: bool = False
) -> tuple[RunHandle, bool]:
    """Start `workflow(*args)` as run `run_id` on the workflow's highest registered version, or
    return the run that has this id.

    Idempotent and safe under concurrent calls (the primary key decides): the same id returns the
    existing run with `created` False; the same id with another workflow or other arguments raises
    RunConflict. A new run is enqueued atomically with its creation (ORM broker) or right after
    the surrounding transaction commits.

    `eager`: instead of a task, this process advances the new run at once, inside the surrounding
    transaction, as far as it goes without a commit (waits, timers, transactional steps, the
    end): a purchase parks at its cancel window in the caller's one commit. The workflow sees
    what the caller wrote before this call, so call `start` after the rows it reads. A run that
    reaches a plain step is advanced on from there right after the commit; should this process
    die first, the poller takes it (at once if it had checkpoints, else after
    DURABLE["EAGER_GRACE_SECONDS"])."""
    name = workflow_name(workflow)
    json_args = to_json(list(args))
    # No savepoint inside a caller's transaction (it costs two round trips): a used id raises
    # nothing in there, and any other error is one the caller's transaction cannot survive.
    # Its log lines and counts wait for the commit: a start rolled back with its caller's
    # transaction never happened.
    with transaction.atomic(savepoint=False), runlog.on_commit():
        grace = conf.seconds("EAGER_GRACE_SECONDS") if eager else None
        run, created = store.create_run(run_id, name, json_args, grace, latest_version(name))
        if created:
            runlog.transition(
                run_id, name, RunStatus.PENDING, event="started", version=run.workflow_version,
                eager=eager,
            )  # fmt: skip
        if created and eager:
            if advance_in_creating_transaction(run) is AdvanceOutcome.AFTER_COMMIT:
                transaction.on_commit(lambda: _advance_eagerly(run_id))
            run.refresh_from_db()
        elif created:
            dispatch.enqueue(run_id)
    if not created and (run.workflow != name or run.args != json_args):
        raise RunConflict(
            f"run {run_id!r} exists for workflow {run.workflow!r} with args {run.args!r}; "
            f"refused {name!r} with {json_args!r}"
        )
    return RunHandle.from_run(run), created


def _advance_eagerly(run_id: str) -> None:
    try:
        advance(run_id, fresh=True)
    except Exception:  # the caller's request must not fail: the poller takes the run
        logger.exception("run %s: eager advance failed; the poller will take it", run_id)


def get(run_id: str) -> RunHandle:
    """The run's current state; RunNotFound if there is no such run."""
    return RunHandle.from_run(store.get_run(run_id))


def send_signal(run_id: str, name: str, payload: Any = None) -> SignalResult:
    """Send the workflow signal `name` to a run. The row is kept whatever the verdict.

    Accepted means the workflow will receive it (its open wait, or the next wait for `name` it
    reaches); rejected means it never will (the run finished, or that wait already timed out).
    The verdict and the wait's timeout decision serialise on the run's row."""
    with transaction.atomic():
        verdict = store.record_signal(run_id, name, to_json(payload))
        if verdict.wakes_run:
            dispatch.enqueue(run_id)
    logger.info(
        "run %s workflow signal %r %s (%s)",
        run_id, name, "accepted" if verdict.accepted else "rejected", verdict.reason,
    )  # fmt: skip
    if verdict.wakes_run:
        runlog.transition(run_id, verdict.run.workflow, RunStatus.PENDING, event="workflow_signal",
                          signal=name)  # fmt: skip
    return SignalResult(verdict.accepted, verdict.reason, RunHandle.from_run(verdict.run))


def database_now() -> dt.datetime:
    """The time by the clock the engine decides deadlines with (the database's on PostgreSQL).

    Compute deadlines handed to `wait_for_signal(until=...)` from it, so every machine agrees."""
    return store.db_now()


def database_now_expression() -> Expression:
    """`database_now()` as an ORM expression, for a query the caller makes anyway: annotate it
    with this and the clock costs no round trip of its own. Build it right before the query (on
    SQLite it holds this process's clock as of the call)."""
    return store.db_now_expression()


def accepted_signal_count(run_id: str, name: str) -> int:
    """How many workflow signals `name` the run has accepted."""
    return WorkflowSignal.objects.filter(run_id=run_id, name=name, accepted=True).count()


def cancel(run_id: str, reason: str = "cancelled by an operator") -> bool:
    """Stop an active run where it is (no more steps run); False if it had already finished."""
    cancelled = store.cancel_run(run_id, reason)
    if cancelled:
        run = store.get_run(run_id)
        runlog.transition(run_id, run.workflow, RunStatus.CANCELLED, reason=reason)
    return cancelled
