"""Helpers for the operations tests: runs of a tiny workflow, finished or waiting."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

import durable
from durable.models import WorkflowRun
from durable.ops import recovery
from tests.ops import workflows  # noqa: F401 - registers ops_wait_then_shout


def finished_run(run_id: str, *, signalled: bool = True, days_ago: float = 0) -> WorkflowRun:
    """A succeeded run of ops_wait_then_shout (with an accepted "go" workflow signal when
    `signalled`), marked as finished `days_ago` days ago."""
    durable.start(run_id, "ops_wait_then_shout", run_id, 60 if signalled else 0)
    recovery.drain(run_id)
    if signalled:
        assert durable.send_signal(run_id, "go", {"by": "test"}).accepted
        recovery.drain(run_id)
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.is_finished, (run.status, run.error)
    finished_at = timezone.now() - dt.timedelta(days=days_ago)
    WorkflowRun.objects.filter(pk=run_id).update(finished_at=finished_at)
    return WorkflowRun.objects.get(pk=run_id)


def waiting_run(run_id: str) -> WorkflowRun:
    """A run of ops_wait_then_shout parked at its wait for "go" (60 s)."""
    durable.start(run_id, "ops_wait_then_shout", run_id, 60)
    recovery.drain(run_id)
    return WorkflowRun.objects.get(pk=run_id)
