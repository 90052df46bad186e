"""A plain step's unknown outcomes (`unknown_for`): retried under the same key without using up
attempts, then the run is blocked for an operator, never failed; a resume tries it again."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.processes import wait_until
from durable import conf
from durable.core import registry
from durable.models import BlockedKind, CheckpointStatus, RunStatus, StepCheckpoint, WorkflowRun
from durable.ops import recovery
from durable.runtime import blocked_runs, step_pool
from durable.runtime.executor import advance, advance_after_call
from tests.durable.paying import charge_through_kills, paid
from tests.durable.step_workflows import CALLS, KEYS_SEEN, NEXT_CALLS
from tests.support.inline import finish


@pytest.fixture
def short_backoff(settings):
    # Retries stay frequent however many there are, so a short horizon sees several.
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_MAX_SECONDS": 0.02}


def start(run_id: str, calls: list[str], *, max_attempts: int, unknown_for: float | None):
    """Start the step of unknown outcomes; its first calls do as `calls` says, then it answers."""
    NEXT_CALLS[run_id] = calls
    KEYS_SEEN.pop(run_id, None)
    durable.start(run_id, "step_with_unknown_outcomes", max_attempts, unknown_for)


def advance_until_blocked_or_finished(run_id: str, timeout: float = 20.0) -> WorkflowRun:
    """Advance the run whenever it is due until it is blocked or finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = WorkflowRun.objects.get(pk=run_id)
        if run.is_finished or run.status == RunStatus.BLOCKED:
            return run
        if run.wake_at is None or run.wake_at <= timezone.now():
            advance(run_id)
        time.sleep(0.01)
    raise AssertionError(f"run {run_id} neither blocked nor finished within {timeout}s")


def checkpoint(run_id: str) -> StepCheckpoint:
    return StepCheckpoint.objects.get(run_id=run_id, position=0)


@pytest.mark.django_db
def test_unknown_outcomes_are_retried_under_the_same_key_without_using_up_attempts():
    start("unknown-1", ["unknown"] * 5, max_attempts=1, unknown_for=60)
    run = finish(["unknown-1"])["unknown-1"]
    assert run.result == {"key": "unknown-1:0"}
    assert KEYS_SEEN["unknown-1"] == ["unknown-1:0"] * 6
    step = checkpoint("unknown-1")
    assert (step.status, step.attempts, step.unknown_attempts) == (CheckpointStatus.DONE, 6, 5)


@pytest.mark.django_db
def test_past_its_horizon_the_run_is_blocked_for_an_operator_never_failed(short_backoff, client):
    start("unknown-2", ["unknown"] * 10_000, max_attempts=1, unknown_for=0.3)
    run = advance_until_blocked_or_finished("unknown-2")
    assert run.status == RunStatus.BLOCKED, (run.status, run.error)
    assert run.blocked_kind == BlockedKind.OUTCOME_UNKNOWN
    assert run.blocked_reason.startswith(
        f"{blocked_runs.OUTCOME_UNKNOWN}: step 'answer_once_known' (position 0) for 0.3s"
    )
    assert run.blocked_reason.endswith("OutcomeUnknown: the provider did not answer")
    assert len(KEYS_SEEN["unknown-2"]) >= 3, "retried within the horizon"
    assert set(KEYS_SEEN["unknown-2"]) == {"unknown-2:0"}
    step = checkpoint("unknown-2")
    assert step.status == CheckpointStatus.PENDING
    assert step.unknown_attempts == step.attempts == len(KEYS_SEEN["unknown-2"])
    # Only an operator resumes it: not a worker's start, not the poller.
    assert recovery.resume_blocked(versions=registry.registered()) == []
    assert recovery.resume_versions_now_live() == []
    body = client.get("/readyz").json()
    assert body["runs"]["blocked"] == body["runs"]["blocked_outcome_unknown"] == 1
    assert "1 workflow run(s) blocked: a step's outcome stayed unknown" in body["detail"]
    call_command("workflows", "list", "--status", "blocked")


@pytest.mark.django_db
def test_a_resume_tries_the_step_again_under_the_same_key_with_a_new_horizon(short_backoff, capsys):
    start("unknown-3", ["unknown"] * 10_000, max_attempts=1, unknown_for=0.3)
    assert advance_until_blocked_or_finished("unknown-3").status == RunStatus.BLOCKED
    calls_before = len(KEYS_SEEN["unknown-3"])
    # Still unknown after the resume: blocked again, but only after a new horizon of retries.
    call_command("workflows", "resume", "unknown-3")
    assert "resumed run 'unknown-3': enqueued" in capsys.readouterr().out
    assert checkpoint("unknown-3").unknown_since is None
    assert advance_until_blocked_or_finished("unknown-3").status == RunStatus.BLOCKED
    assert len(KEYS_SEEN["unknown-3"]) >= calls_before + 3
    # The provider answers now: the resumed step succeeds, under the same key.
    NEXT_CALLS["unknown-3"].clear()
    call_command("workflows", "resume", "unknown-3", "--inline")
    run = WorkflowRun.objects.get(pk="unknown-3")
    assert run.status == RunStatus.SUCCEEDED and run.result == {"key": "unknown-3:0"}
    assert set(KEYS_SEEN["unknown-3"]) == {"unknown-3:0"}


@pytest.mark.django_db
def test_an_attempt_that_timed_out_is_an_unknown_outcome():
    durable.start("unknown-4", "timed_out_step_with_unknown_outcomes", 2)
    run = finish(["unknown-4"])["unknown-4"]
    assert run.result == {"answer": "answer 3"}
    assert CALLS["unknown-4"] == 3
    assert checkpoint("unknown-4").unknown_attempts == 2


@pytest.mark.django_db
def test_any_other_exception_still_uses_up_an_attempt():
    start("unknown-5", ["unknown", "fail", "unknown", "fail", "fail"], max_attempts=3,
          unknown_for=60)  # fmt: skip
    run = finish(["unknown-5"])["unknown-5"]
    assert run.result == {"failed": "ValueError: card declined (call 5)"}
    step = checkpoint("unknown-5")
    assert (step.status, step.attempts, step.unknown_attempts) == (CheckpointStatus.ERROR, 5, 2)


@pytest.mark.django_db
def test_without_unknown_for_an_unknown_outcome_is_a_failed_attempt():
    start("unknown-6", ["unknown"] * 10_000, max_attempts=2, unknown_for=None)
    run = finish(["unknown-6"])["unknown-6"]
    assert run.result == {"failed": "OutcomeUnknown: the provider did not answer"}
    assert KEYS_SEEN["unknown-6"] == ["unknown-6:0"] * 2
    step = checkpoint("unknown-6")
    assert (step.status, step.attempts, step.unknown_attempts) == (CheckpointStatus.ERROR, 2, 0)


def test_unknown_for_must_be_positive():
    with pytest.raises(ValueError, match="unknown_for must be positive"):
        durable.WorkflowContext("any").step(len, "x", unknown_for=0)


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_a_step_whose_workers_die_inside_it_is_never_failed_and_charges_once():
    run_ids = [f"pay-unknown-{n}" for n in range(2)]
    # One attempt allowed, and every worker dies during it, twice: without unknown_for the
    # second death would fail the step (StepInterrupted).
    ledger = charge_through_kills("pay_when_known", run_ids)
    charges = {charge["key"]: charge for charge in ledger["charges"]}
    assert sorted(charges) == sorted(f"{run_id}:0" for run_id in run_ids)
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert paid(run_id) == [f"paid:{run_id}:{charges[f'{run_id}:0']['id']}"]
        step = StepCheckpoint.objects.get(run_id=run_id, position=0)
        assert step.attempts >= 3 and step.unknown_attempts == step.attempts - 1


@pytest.mark.django_db
def test_the_admin_shows_why_and_its_resume_starts_a_new_horizon(short_backoff, admin_client):
    start("unknown-7", ["unknown"] * 10_000, max_attempts=1, unknown_for=0.3)
    assert advance_until_blocked_or_finished("unknown-7").status == RunStatus.BLOCKED
    url = reverse("admin:durable_workflowrun_changelist")
    listing = admin_client.get(url, {"status": "blocked"})
    assert b"outcome unknown: step &#x27;answer_once_known&#x27;" in listing.content
    NEXT_CALLS["unknown-7"].clear()
    response = admin_client.post(
        url, {"action": "resume_now", "_selected_action": ["unknown-7"]}, follow=True
    )
    assert b"Enqueued 1 run" in response.content
    assert checkpoint("unknown-7").unknown_since is None, "a new horizon"
    run = finish(["unknown-7"])["unknown-7"]
    assert run.result == {"key": "unknown-7:0"} and set(KEYS_SEEN["unknown-7"]) == {"unknown-7:0"}


@pytest.mark.django_db(transaction=True)
def test_through_a_worker_processs_step_pool_too(short_backoff, monkeypatch):
    pool = step_pool.StepPool(4, conf.seconds("LEASE_SECONDS"), 1.0, advance_after_call)
    monkeypatch.setattr(step_pool, "_pool", pool)
    start("pool-answers", ["unknown"] * 3, max_attempts=1, unknown_for=60)
    start("pool-blocks", ["unknown"] * 10_000, max_attempts=1, unknown_for=0.3)
    runs = ["pool-answers", "pool-blocks"]

    def settled() -> bool:
        for run in WorkflowRun.objects.filter(pk__in=runs):
            due = run.wake_at is None or run.wake_at <= timezone.now()
            if run.status in (RunStatus.PENDING, RunStatus.WAITING) and due:
                with step_pool.task():
                    advance(run.pk)
        return all(
            r.is_finished or r.status == RunStatus.BLOCKED
            for r in WorkflowRun.objects.filter(pk__in=runs)
        )

    try:
        wait_until(settled, 30, interval=0.02)
    finally:
        pool.drain()
    answered, blocked = (WorkflowRun.objects.get(pk=r) for r in runs)
    assert answered.result == {"key": "pool-answers:0"}, answered.error
    assert KEYS_SEEN["pool-answers"] == ["pool-answers:0"] * 4
    assert (
        blocked.status == RunStatus.BLOCKED and blocked.blocked_kind == BlockedKind.OUTCOME_UNKNOWN
    )
    assert set(KEYS_SEEN["pool-blocks"]) == {"pool-blocks:0"}
