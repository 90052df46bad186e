"""Backpressure (durable.helping): a start advances an overdue run when the workers are behind.

The starts here commit for real (transactional test database), so their on_commit callbacks,
where the help happens, run as in production. No cluster runs: an overdue run is only advanced
if a start does it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import durable
from durable import helping
from durable.executor import Advanced
from durable.models import CheckpointStatus, RunStatus, StepCheckpoint, WorkflowRun
from tests.durable.example_workflows import FLAKY_CALLS, effect_count
from tests.support.inline import finish

pytestmark = pytest.mark.django_db(transaction=True)

HELP_AFTER = 0.5
# The look for an overdue run (store.oldest_overdue_run), as it appears in the SQL.
LOOK = 'ORDER BY "durable_workflowrun"."wake_at"'


@pytest.fixture(autouse=True)
def _fresh_lookout(monkeypatch):
    """Each test starts in a process that has not looked for overdue runs yet."""
    monkeypatch.setattr(helping, "_lookout", helping._Lookout())


@pytest.fixture
def helping_on(settings):
    settings.DURABLE = {**settings.DURABLE, "HELP_OVERDUE_AFTER_SECONDS": HELP_AFTER}


def _overdue(run_id: str, workflow: str, *args: object, by: float = 60.0) -> None:
    """A run left by the workers: started for them (no eager advance, no help), due `by`
    seconds ago."""
    with override_settings(DURABLE={**django_settings.DURABLE, "HELP_OVERDUE_AFTER_SECONDS": 0}):
        durable.start(run_id, workflow, *args)
    WorkflowRun.objects.filter(pk=run_id).update(
        wake_at=durable.database_now() - dt.timedelta(seconds=by)
    )


def test_a_start_advances_the_oldest_overdue_run(helping_on):
    _overdue("late-old", "send_with_undo", "first", 0, by=120)
    _overdue("late-new", "send_with_undo", "second", 0, by=60)
    durable.start("starter-1", "send_with_undo", "hello", 30, eager=True)
    runs = {run.id: run for run in WorkflowRun.objects.all()}
    assert runs["late-old"].status == RunStatus.SUCCEEDED
    assert runs["late-old"].result == {"sent": True, "receipt": "receipt-for-first"}
    assert runs["late-new"].status == RunStatus.PENDING, "one overdue run per start"
    assert runs["starter-1"].status == RunStatus.WAITING
    assert effect_count("sent:late-old") == 1
    # Behind: the next start looks again at once, and takes the next oldest.
    durable.start("starter-2", "send_with_undo", "hello", 30, eager=True)
    assert WorkflowRun.objects.get(pk="late-new").status == RunStatus.SUCCEEDED


def test_a_plain_step_is_handed_back_to_the_workers(helping_on):
    FLAKY_CALLS.pop("late-plain", None)
    # A transactional step, then a plain step (which may call the outside world).
    _overdue("late-plain", "many_steps", 1, 0, 0)
    durable.start("starter-3", "send_with_undo", "hello", 30, eager=True)
    run = WorkflowRun.objects.get(pk="late-plain")
    assert (run.status, run.lease_owner, run.enqueued_at) == (RunStatus.PENDING, "", None)
    assert run.wake_at is not None and run.wake_at <= durable.database_now()
    assert effect_count("effect:late-plain:") == 1, "its transactional step ran"
    assert effect_count("observed:late-plain:") == 0, "its plain step did not"
    assert list(
        StepCheckpoint.objects.filter(run_id="late-plain").values_list("position", "status")
    ) == [(0, CheckpointStatus.DONE)]
    # Runnable at once: the poller hands it to a worker, which runs the rest.
    assert durable.engine.poll_once() == ["late-plain"]
    finish(["late-plain"])
    assert (effect_count("effect:late-plain:"), effect_count("observed:late-plain:")) == (1, 1)


def test_a_plain_step_first_is_handed_back_untouched(helping_on):
    FLAKY_CALLS.pop("late-flaky", None)
    _overdue("late-flaky", "flaky", 0, 1)
    assert helping.help_with_one_overdue_run() is Advanced.HANDED_BACK
    assert "late-flaky" not in FLAKY_CALLS
    assert WorkflowRun.objects.get(pk="late-flaky").status == RunStatus.PENDING
    finish(["late-flaky"])
    assert FLAKY_CALLS["late-flaky"] == 1


def test_a_run_due_within_the_allowance_is_left_to_the_workers(helping_on):
    _overdue("due-now", "send_with_undo", "x", 0, by=0)
    durable.start("starter-4", "send_with_undo", "hello", 30, eager=True)
    assert WorkflowRun.objects.get(pk="due-now").status == RunStatus.PENDING


def test_off_by_default_a_start_leaves_overdue_runs_alone():
    _overdue("late-default", "send_with_undo", "x", 0)
    with CaptureQueriesContext(connection) as queries:
        durable.start("starter-5", "send_with_undo", "hello", 30, eager=True)
    assert WorkflowRun.objects.get(pk="late-default").status == RunStatus.PENDING
    assert not [q for q in queries.captured_queries if LOOK in q["sql"]]


def test_with_nothing_overdue_a_process_looks_once_per_poll_interval(settings):
    settings.DURABLE = {
        **settings.DURABLE, "HELP_OVERDUE_AFTER_SECONDS": HELP_AFTER, "POLL_INTERVAL_SECONDS": 3600,
    }  # fmt: skip

    def looks(run_id: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            durable.start(run_id, "send_with_undo", "hello", 30, eager=True)
        return sum(LOOK in q["sql"] for q in queries.captured_queries)

    assert looks("quiet-1") == 1
    assert looks("quiet-2") == 0, "looked again within the poll interval"
    _overdue("late-unseen", "send_with_undo", "x", 0)
    assert looks("quiet-3") == 0
    assert WorkflowRun.objects.get(pk="late-unseen").status == RunStatus.PENDING


def test_a_failing_help_never_fails_the_start(helping_on, monkeypatch, caplog):
    _overdue("late-broken", "send_with_undo", "x", 0)

    def broken(run_id: str, **kwargs: object) -> Advanced:
        raise RuntimeError("database trouble")

    monkeypatch.setattr(helping, "advance", broken)
    with caplog.at_level(logging.INFO, logger="durable.helping"):
        handle, created = durable.start("starter-6", "send_with_undo", "hello", 30, eager=True)
    assert created and handle.status == RunStatus.WAITING
    assert WorkflowRun.objects.get(pk="late-broken").status == RunStatus.PENDING
    messages = [record.getMessage() for record in caplog.records]
    assert any("workers are behind" in m for m in messages), messages
    assert any("helping with an overdue run failed" in m for m in messages), messages
