"""A wait's deadline, to the instant: the sender and the executor agree on which side of it a
moment is, whatever time their clocks read around it."""

from __future__ import annotations

import datetime as dt

import pytest

import durable
from durable.models import CheckpointStatus, StepCheckpoint, WorkflowRun
from durable.persistence import store
from durable.runtime.executor import AdvanceOutcome, advance
from durable.runtime.run_transaction import RunTransaction
from tests.durable.example_workflows import effect_count

pytestmark = pytest.mark.django_db


def parked(run_id: str) -> dt.datetime:
    """Start a send-with-undo run, park it at its wait (60 s), and return the wait's deadline."""
    durable.start(run_id, "send_with_undo", "hello", 60)
    assert advance(run_id) is AdvanceOutcome.SUSPENDED
    return StepCheckpoint.objects.get(run_id=run_id, position=0).deadline


def test_a_signal_at_exactly_the_deadline_is_too_late(monkeypatch: pytest.MonkeyPatch) -> None:
    deadline = parked("edge-signal")
    monkeypatch.setattr(store, "db_now", lambda: deadline)
    verdict = durable.send_signal("edge-signal", "undo")
    assert not verdict.accepted and verdict.reason == "wait_timed_out"
    wait = StepCheckpoint.objects.get(run_id="edge-signal", position=0)
    assert wait.status == CheckpointStatus.DONE and wait.result == {"timed_out": True}


def test_a_signal_just_before_the_deadline_is_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    deadline = parked("edge-early")
    monkeypatch.setattr(store, "db_now", lambda: deadline - dt.timedelta(microseconds=1))
    assert durable.send_signal("edge-early", "undo").accepted


def test_an_executor_woken_50ms_before_the_deadline_keeps_the_wait_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Woken early (a poller whose clock runs ahead, an operator's resume): the executor's clock
    # says the deadline is 50 ms away, so the wait must not be decided yet.
    deadline = parked("edge-wake")
    store.wake("edge-wake")
    early = deadline - dt.timedelta(milliseconds=50)
    monkeypatch.setattr(RunTransaction, "now", lambda self: early)
    assert advance("edge-wake") is AdvanceOutcome.SUSPENDED
    wait = StepCheckpoint.objects.get(run_id="edge-wake", position=0)
    assert wait.status == CheckpointStatus.PENDING
    run = WorkflowRun.objects.get(pk="edge-wake")
    assert (run.status, run.wake_at) == ("waiting", deadline)
    assert effect_count("sent:edge-wake") == 0
