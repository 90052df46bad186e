"""Runs that cannot go on by themselves: blocked (never failed), or given back for a live worker
that has their workflow version.

A run is blocked when replay diverges from its history, when its workflow version is registered
by no live worker, when its stored arguments no longer fit the workflow's signature, or when a
plain step's outcome stayed unknown past its `unknown_for` (OUTCOME_UNKNOWN: only an operator
resumes it). It keeps its checkpoints, workflow signals and deadlines until it is resumed
(durable/ops/recovery.py).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from durable.models import BlockedKind, RunStatus
from durable.persistence import heartbeats, store
from durable.runtime import runlog

# The start of the reason (for people) of a run blocked as BlockedKind.VERSION_MISSING, and of
# one blocked as BlockedKind.OUTCOME_UNKNOWN.
MISSING = "no worker has"
OUTCOME_UNKNOWN = "outcome unknown"
# A worker lacking a run's version gives it back for this long, for a worker that has it.
UNKNOWN_VERSION_RETRY_SECONDS = 2.0


def block(run_id: str, owner: str, workflow: str, kind: BlockedKind, reason: str) -> None:
    """Inside the run's fenced transaction: block it as `kind` with `reason` (for people), logging
    once per reason."""
    previous = store.block_run(run_id, owner, kind, reason)
    if previous != reason:
        runlog.transition(run_id, workflow, RunStatus.BLOCKED, reason=reason)


def version_elsewhere(workflow: str, version: int) -> bool:
    """Whether a worker seen within HEALTH_STALE_SECONDS has `workflow` at `version`."""
    return f"{workflow}@{version}" in heartbeats.live_versions()


def not_registered_here(run_id: str, owner: str, workflow: str, version: int) -> bool:
    """Inside the run's fenced transaction, for a run whose version this process lacks: give it
    back for a live worker that has it (True), or block it when there is none (False)."""
    if version_elsewhere(workflow, version):
        wake_at = timezone.now() + dt.timedelta(seconds=UNKNOWN_VERSION_RETRY_SECONDS)
        store.defer_run(run_id, owner, wake_at)
        return True
    block(run_id, owner, workflow, BlockedKind.VERSION_MISSING, f"{MISSING} {workflow} v{version}")
    return False
