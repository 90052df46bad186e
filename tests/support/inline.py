"""Advance runs in the test process, standing in for the cluster and the poller."""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.utils import timezone

from durable.models import WorkflowRun
from durable.runtime.executor import advance


def finish(run_ids: Iterable[str], timeout: float = 20.0) -> dict[str, WorkflowRun]:
    """Advance the runs whenever they are due until all have finished; fail after `timeout`."""
    pending = set(run_ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for run in WorkflowRun.objects.filter(pk__in=pending):
            if run.is_finished:
                pending.discard(run.pk)
            elif run.wake_at is None or run.wake_at <= timezone.now():
                advance(run.pk)
        if pending:
            time.sleep(0.02)
    assert not pending, f"runs not finished within {timeout}s: {sorted(pending)}"
    return {run.pk: run for run in WorkflowRun.objects.filter(pk__in=run_ids)}
