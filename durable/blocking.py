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

from durable import conf, queue, registry, store
from durable.models import EngineHeartbeat

logger = logging.getLogger("durable.blocking")

# A worker lacking a run's version gives it back for this long, for a worker that has it.
UNKNOWN_VERSION_RETRY_SECONDS = 2.0


def block(run_id: str, owner: str, workflow: str, reason: str) -> None:
    """Inside the run's fenced transaction: block it with `reason`, logging once per reason."""
    previous = store.block_run(run_id, owner, reason)
    if previous != reason:
        logger.error("run %s workflow=%s status=blocked reason=%r", run_id, workflow, reason)


def version_elsewhere(workflow: str, version: int) -> bool:
    """Whether a worker seen within HEALTH_STALE_SECONDS has `workflow` at `version`."""
    from durable.health import WORKER

    wanted = f"{workflow}@{version}"
    fresh_since = store.db_now() - conf.seconds("HEALTH_STALE_SECONDS")
    seen = EngineHeartbeat.objects.filter(kind=WORKER, last_seen__gte=fresh_since)
    return any(wanted in (names or []) for names in seen.values_list("workflows", flat=True))


def not_registered_here(run_id: str, owner: str, workflow: str, version: int) -> bool:
    """Inside the run's fenced transaction, for a run whose version this process lacks: give it
    back for a live worker that has it (True), or block it when there is none (False)."""
    if version_elsewhere(workflow, version):
        wake_at = timezone.now() + dt.timedelta(seconds=UNKNOWN_VERSION_RETRY_SECONDS)
        store.defer_run(run_id, owner, wake_at)
        return True
    block(run_id, owner, workflow, f"no worker has {workflow} v{version}")
    return False


def resume_blocked(
    run_ids: Iterable[str] | None = None, *, registered_here: bool = False, enqueue: bool = True
) -> list[str]:
    """Make blocked runs runnable again and (unless not `enqueue`) enqueue them, atomically:
    those in `run_ids` (all when None), and with `registered_here` only those whose workflow
    version this process has. Returns the ids resumed."""
    runs = Q()
    if run_ids is not None:
        runs &= Q(pk__in=list(run_ids))
    if registered_here:
        versions = Q(pk__in=[])
        for entry in registry.registered():
            name, version = entry.rsplit("@", 1)
            versions |= Q(workflow=name, workflow_version=int(version))
        runs &= versions
    with transaction.atomic():
        ids = store.unblock_runs(runs, timezone.now())
        if ids and enqueue:
            queue.enqueue_many(ids)
    if ids:
        logger.info("resumed %d blocked run(s)", len(ids))
    return ids


def on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """django-q2's post_spawn signal, in each new worker process: record the workflow versions
    it has (its heartbeat), then resume the blocked runs it may now be able to replay."""
    from durable.health import WORKER, beat

    try:
        beat(WORKER)
        resume_blocked(registered_here=True)
    except Exception:  # a worker must start even if the database is away; the poller retries
        logger.exception("could not resume blocked runs at worker start")
