"""Runs the deployed code cannot replay: blocked (never failed), and resumed when code that can
replay them is back.

A run is blocked when replay diverges from its history, when its workflow version is registered
by no live worker, or when its stored arguments no longer fit the workflow's signature. It keeps
its checkpoints, workflow signals and deadlines; nothing re-enqueues it until `resume_blocked`
does: when a worker that has its version starts, through `resume_stuck_workflows`, or from the
admin. A run that still cannot be replayed is blocked again (and logged only if its reason is
new).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from durable import conf
from durable.core import registry
from durable.models import EngineHeartbeat, RunStatus, WorkflowRun
from durable.persistence import store
from durable.runtime import runlog
from durable.transport import dispatch

logger = logging.getLogger("durable.runtime.blocking")

MISSING = "no worker has"
# A worker lacking a run's version gives it back for this long, for a worker that has it.
UNKNOWN_VERSION_RETRY_SECONDS = 2.0


def block(run_id: str, owner: str, workflow: str, reason: str) -> None:
    """Inside the run's fenced transaction: block it with `reason`, logging once per reason."""
    previous = store.block_run(run_id, owner, reason)
    if previous != reason:
        runlog.transition(run_id, workflow, RunStatus.BLOCKED, reason=reason)


def live_versions() -> set[str]:
    """The workflow versions ("name@version") of the workers seen within HEALTH_STALE_SECONDS."""
    from durable.ops.health import WORKER

    fresh_since = store.db_now() - conf.seconds("HEALTH_STALE_SECONDS")
    seen = EngineHeartbeat.objects.filter(kind=WORKER, last_seen__gte=fresh_since)
    return {name for names in seen.values_list("workflows", flat=True) for name in names or []}


def version_elsewhere(workflow: str, version: int) -> bool:
    """Whether a worker seen within HEALTH_STALE_SECONDS has `workflow` at `version`."""
    return f"{workflow}@{version}" in live_versions()


def not_registered_here(run_id: str, owner: str, workflow: str, version: int) -> bool:
    """Inside the run's fenced transaction, for a run whose version this process lacks: give it
    back for a live worker that has it (True), or block it when there is none (False)."""
    if version_elsewhere(workflow, version):
        wake_at = timezone.now() + dt.timedelta(seconds=UNKNOWN_VERSION_RETRY_SECONDS)
        store.defer_run(run_id, owner, wake_at)
        return True
    block(run_id, owner, workflow, f"{MISSING} {workflow} v{version}")
    return False


def resume_blocked(
    run_ids: Iterable[str] | None = None,
    *,
    versions: Iterable[str] | None = None,
    enqueue: bool = True,
) -> list[str]:
    """Make blocked runs runnable again and (unless not `enqueue`) enqueue them, atomically:
    those in `run_ids` (all when None) whose workflow version is in `versions` ("name@version";
    any when None). Returns the ids resumed."""
    runs = Q()
    if run_ids is not None:
        runs &= Q(pk__in=list(run_ids))
    if versions is not None:
        of_versions = Q(pk__in=[])
        for entry in versions:
            name, version = entry.rsplit("@", 1)
            of_versions |= Q(workflow=name, workflow_version=int(version))
        runs &= of_versions
    with transaction.atomic():
        ids = store.unblock_runs(runs, timezone.now())
        if ids and enqueue:
            dispatch.enqueue_many(ids)
    if ids:
        logger.info("resumed %d blocked run(s)", len(ids))
    return ids


def on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """django-q2's post_spawn signal, in each new worker process: record the workflow versions
    it has (its heartbeat), then resume the blocked runs it may now be able to replay."""
    from durable.ops.health import WORKER, beat

    try:
        beat(WORKER)
        resume_blocked(versions=registry.registered())
    except Exception:  # a worker must start even if the database is away; the poller retries
        logger.exception("could not resume blocked runs at worker start")


def resume_versions_now_live() -> list[str]:
    """For the poller: resume the runs blocked because no live worker had their workflow version,
    once a live worker lists it (a worker can look stale while idle between probes)."""
    missing = (
        WorkflowRun.objects.filter(status=RunStatus.BLOCKED, blocked_reason__startswith=MISSING)
        .values_list("workflow", "workflow_version")
        .distinct()
    )
    wanted = {f"{name}@{version}" for name, version in missing}
    if not wanted:
        return []
    live = wanted & live_versions()
    return resume_blocked(versions=live) if live else []
