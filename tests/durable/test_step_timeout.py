"""A plain step's timeout: a late attempt is abandoned, counted, and retried."""

from __future__ import annotations

import pytest

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from durable.models import CheckpointStatus, StepCheckpoint
from tests.durable.step_workflows import CALLS, MOST_AT_ONCE, answer_late_first_calls
from tests.support.inline import finish

pytestmark = pytest.mark.django_db


def test_attempts_that_outlast_the_timeout_are_counted_and_retried_once_they_ended():
    durable.start("timeout-1", "step_with_timeout", 2, 3)
    assert finish(["timeout-1"])["timeout-1"].result == {"answer": "answer 3"}
    checkpoint = StepCheckpoint.objects.get(run_id="timeout-1")
    assert checkpoint.status == CheckpointStatus.DONE and checkpoint.attempts == 3
    assert checkpoint.result == "answer 3", "the late answers are ignored"
    assert CALLS["timeout-1"] == 3
    # Each late call was waiting for a second copy to start beside it: none did.
    assert MOST_AT_ONCE["timeout-1"] == 1


def test_a_step_that_never_answers_in_time_fails_with_a_readable_error():
    durable.start("timeout-2", "step_with_timeout", 99, 2)
    assert finish(["timeout-2"])["timeout-2"].result == {
        "failed": "StepTimedOut: no answer within 0.5 s; its late answer was ignored"
    }
    assert StepCheckpoint.objects.get(run_id="timeout-2").attempts == 2
    assert MOST_AT_ONCE["timeout-2"] == 1


def test_a_timeout_must_be_positive():
    ctx = durable.WorkflowContext("any")
    with pytest.raises(ValueError, match="positive"):
        ctx.step(answer_late_first_calls, "any", 0, timeout=0)
