"""Recovery: find the runs that are not progressing, and make them progress again (re-enqueue
them, advance them here, or resume blocked runs once code that can replay them is back).

A blocked run (durable/runtime/blocked_runs.py) keeps its checkpoints, workflow signals and
deadlines; nothing re-enqueues it until `resume_blocked` does: when a worker that has its version
starts, when the poller sees such a worker alive, through `resume_stuck_workflows` or
`workflows resume`, or from the admin. A run that still cannot be replayed is blocked again (and
logged only if its reason is new). A run blocked because a step's outcome stayed unknown is
resumed only by an operator (a new horizon for the step, the same key).
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from durable import conf
from durable.core import registry
from durable.models import ACTIVE_STATUSES, BlockedKind, RunStatus, WorkflowRun
from durable.persistence import heartbeats, store
from durable.runtime import step_pool
from durable.runtime.executor import AdvanceOutcome, advance, advance_after_call
from durable.transport import dispatch, taskqueue

logger = logging.getLogger("durable.ops.recovery")


@dataclass(frozen=True, slots=True)
class StuckRun:
    run_id: str
    workflow: str
    status: str
    why: str


def find_stuck(
    older_than: dt.timedelta = dt.timedelta(0), run_id: str | None = None
) -> list[StuckRun]:
    """Runs that are not finished and not progressing: blocked (the deployed code could not
    replay them), lease expired, wake-up time passed, or enqueued and never picked up, for at
    least `older_than` (by the database's clock)."""
    cutoff = store.db_now() - older_than
    runs = WorkflowRun.objects.filter(
        Q(status=RunStatus.BLOCKED, blocked_at__lte=cutoff)
        | Q(status__in=ACTIVE_STATUSES)
        & (
            Q(lease_expires_at__lt=cutoff)
            | Q(lease_owner="", wake_at__lte=cutoff)
            | Q(lease_owner="", wake_at__isnull=True, updated_at__lte=cutoff)
        )
    )
    if run_id is not None:
        runs = runs.filter(pk=run_id)
    stuck = []
    for run in runs.order_by("created_at"):
        if run.status == RunStatus.BLOCKED:
            why = f"blocked: {run.blocked_reason}"
        elif run.lease_expires_at is not None and run.lease_expires_at < cutoff:
            why = f"lease held by {run.lease_owner} expired at {run.lease_expires_at.isoformat()}"
        elif run.wake_at is not None:
            why = f"wake-up time {run.wake_at.isoformat()} has passed"
        else:
            why = "runnable but not picked up"
        stuck.append(StuckRun(run.id, run.workflow, run.status, why))
    return stuck


def resume(run_ids: Iterable[str], *, inline: bool = False) -> dict[str, str]:
    """Re-enqueue the runs (or advance them in this process when `inline`). Blocked runs are
    made runnable again first: replayed by code that can, they finish; otherwise they are
    blocked again. A run that is not due yet (or held by a worker) is left to the poller at its
    wake-up time, which the extra task never delays."""
    run_ids = list(run_ids)
    unblocked = set(resume_blocked(run_ids, enqueue=not inline))
    outcome: dict[str, str] = {}
    for run_id in run_ids:
        if run_id in unblocked and not inline:
            outcome[run_id] = "enqueued"
        elif inline:
            outcome[run_id] = drain(run_id).value
        else:
            with transaction.atomic():
                store.mark_enqueued_if_due(run_id)
                dispatch.enqueue(run_id)
            outcome[run_id] = "enqueued"
    return outcome


def drain(run_id: str, max_rounds: int = 100) -> AdvanceOutcome:
    """Advance one run in this process until it finishes or must wait for the clock or a signal."""
    result = AdvanceOutcome.BUSY
    for _ in range(max_rounds):
        result = advance(run_id)
        run = store.get_run(run_id)
        if run.is_finished or result is not AdvanceOutcome.SUSPENDED:
            return result
        if run.wake_at is None or run.wake_at > store.db_now():
            return result
    return result


def resume_blocked(
    run_ids: Iterable[str] | None = None,
    *,
    versions: Iterable[str] | None = None,
    enqueue: bool = True,
) -> list[str]:
    """Make blocked runs runnable again and (unless not `enqueue`) enqueue them, atomically:
    those in `run_ids` (all when None) whose workflow version is in `versions` ("name@version";
    any when None). Returns the ids resumed.

    Runs named in `run_ids` are an operator's choice: a step whose outcome was unknown starts a
    new `unknown_for` horizon. Without `run_ids` (new code is live), runs blocked for an unknown
    outcome are left for an operator."""
    runs = Q()
    if run_ids is not None:
        runs &= Q(pk__in=list(run_ids))
    else:
        runs &= ~Q(blocked_kind=BlockedKind.OUTCOME_UNKNOWN)
    if versions is not None:
        of_versions = Q(pk__in=[])
        for entry in versions:
            name, version = entry.rsplit("@", 1)
            of_versions |= Q(workflow=name, workflow_version=int(version))
        runs &= of_versions
    with transaction.atomic():
        ids = store.unblock_runs(runs, timezone.now())
        if ids and run_ids is not None:
            store.restart_unknown_horizons(ids)
        if ids and enqueue:
            dispatch.enqueue_many(ids)
    if ids:
        logger.info("resumed %d blocked run(s)", len(ids))
    return ids


def on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """django-q2's post_spawn signal, in each new worker process: turn its step pool on (plain
    steps' calls then run beside its tasks, not inside them), record the workflow versions it
    has (its heartbeat), then resume the blocked runs it may now be able to replay."""
    # Not when django-q2's loops run in place (tests), nor with the pool turned off (0).
    if multiprocessing.parent_process() is not None and conf.get("STEPS_IN_FLIGHT") > 0:
        step_pool.enable(advance_after_call, taskqueue.task_timeout())
    try:
        heartbeats.beat(heartbeats.WORKER)
        resume_blocked(versions=registry.registered())
    except Exception:  # a worker must start even if the database is away; the poller retries
        logger.exception("could not resume blocked runs at worker start")


def resume_versions_now_live() -> list[str]:
    """For the poller: resume the runs blocked because no live worker had their workflow version,
    once a live worker lists it (a worker can look stale while idle between probes)."""
    missing = (
        WorkflowRun.objects.filter(
            status=RunStatus.BLOCKED, blocked_kind=BlockedKind.VERSION_MISSING
        )
        .values_list("workflow", "workflow_version")
        .distinct()
    )
    wanted = {f"{name}@{version}" for name, version in missing}
    if not wanted:
        return []
    live = wanted & heartbeats.live_versions()
    return resume_blocked(versions=live) if live else []
