"""The step pool's completer in this process (as in a worker process): answers recorded
together, one of them refused because its run's lease was taken meanwhile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.processes import wait_until
from durable import conf
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from durable.persistence import store
from durable.runtime import step_pool
from durable.runtime.executor import AdvanceOutcome, advance, advance_after_call
from tests.durable.example_workflows import effect_count

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_answer_whose_lease_was_taken_is_dropped_and_the_others_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    release = tmp_path / "release"
    pool = step_pool.StepPool(4, conf.seconds("LEASE_SECONDS"), 1.0, advance_after_call)
    monkeypatch.setattr(step_pool, "_pool", pool)
    run_ids = ["answers-stolen", "answers-kept-1", "answers-kept-2"]
    try:
        for run_id in run_ids:
            durable.start(run_id, "held_step", str(release))
            with step_pool.task():
                assert advance(run_id) is AdvanceOutcome.IN_FLIGHT
        wait_until(lambda: sum(effect_count(f"started:{r}:") for r in run_ids) == 3, 30)
        # The first run's lease lapses and another executor takes it while its call runs.
        lapsed = timezone.now() - dt.timedelta(seconds=1)
        WorkflowRun.objects.filter(pk="answers-stolen").update(lease_expires_at=lapsed)
        assert store.acquire_lease("answers-stolen", "thief", dt.timedelta(seconds=60))
        release.touch()
        wait_until(lambda: all(WorkflowRun.objects.get(pk=r).is_finished for r in run_ids[1:]), 30)
    finally:
        pool.drain()
    assert pool.in_flight() == 0, "every slot was given back"
    stolen = WorkflowRun.objects.get(pk="answers-stolen")
    assert stolen.lease_owner == "thief" and stolen.status == RunStatus.RUNNING
    assert StepCheckpoint.objects.get(run_id="answers-stolen", position=0).status == "pending"
    for run_id in run_ids[1:]:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert effect_count(f"paid:{run_id}:") == 1
