"""Deploy safety in process: code that cannot replay a run blocks it (never fails it), visibly,
and code that can (a rollback, a patch, the right version) resumes it where it was."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import logging

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import durable
from durable.core import registry
from durable.models import (
    BlockedKind,
    CheckpointStatus,
    EngineHeartbeat,
    RunStatus,
    StepCheckpoint,
    WorkflowRun,
)
from durable.ops import health, recovery
from durable.runtime.executor import AdvanceOutcome, advance
from durable.transport.poller import poll_once
from tests.durable import deploy_workflows as flows

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(monkeypatch):
    """Deploy a change of `deploy_flow` v1 for this test only."""
    monkeypatch.setitem(
        registry._workflows, "deploy_flow", dict(registry._workflows["deploy_flow"])
    )

    def deploy(fn, version: int = 1):
        monkeypatch.setitem(registry._workflows["deploy_flow"], version, fn)

    return deploy


def parked(run_id: str, timeout: float = 30) -> None:
    durable.start(run_id, "deploy_flow", run_id, timeout)
    assert advance(run_id) is AdvanceOutcome.SUSPENDED


def wake_now(run_id: str) -> None:
    WorkflowRun.objects.filter(pk=run_id).update(wake_at=None, status=RunStatus.PENDING)


def marks(run_id: str) -> list[str]:
    return sorted(
        Group.objects.filter(name__startswith=f"deploy:{run_id}:").values_list("name", flat=True)
    )


def blocked_lines(caplog, run_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "status=blocked" in r.getMessage() and run_id in r.getMessage()
    ]


def test_a_divergence_blocks_the_run_with_its_state_logs_once_and_a_rollback_finishes_it(
    code, caplog
):
    parked("div-1")
    code(flows.inserted_step)
    assert durable.send_signal("div-1", "go", "now").accepted
    with caplog.at_level(logging.INFO):
        assert advance("div-1") is AdvanceOutcome.BLOCKED
        run = WorkflowRun.objects.get(pk="div-1")
        assert run.status == RunStatus.BLOCKED and run.error == "" and run.blocked_at
        assert run.blocked_kind == BlockedKind.CANNOT_REPLAY
        assert "wait:cancel" not in run.blocked_reason and "'audit'" not in run.blocked_reason
        assert "transaction 'mark'" in run.blocked_reason and "wait 'wait:go'" in run.blocked_reason
        wait = StepCheckpoint.objects.get(run_id="div-1", position=0)
        assert wait.status == CheckpointStatus.PENDING, "the history is kept as it was"
        assert marks("div-1") == [], "nothing ran"
        # Redeliveries and the poller leave it alone; a resume on the same code blocks it again.
        assert advance("div-1") is AdvanceOutcome.BUSY
        assert poll_once() == []
        assert recovery.resume_blocked(["div-1"]) == ["div-1"]
        assert advance("div-1") is AdvanceOutcome.BLOCKED
    assert len(blocked_lines(caplog, "div-1")) == 1, "logged once per run, not per attempt"
    code(flows.deploy_flow)  # the rollback
    assert recovery.resume_blocked() == ["div-1"]
    assert advance("div-1") is AdvanceOutcome.FINISHED
    run = WorkflowRun.objects.get(pk="div-1")
    assert run.status == RunStatus.SUCCEEDED and run.result["go"] is True
    assert marks("div-1") == ["deploy:div-1:done"]


def test_the_same_change_made_with_a_patch_blocks_nothing_and_new_runs_take_it(code):
    parked("patch-old")
    code(flows.patched_step)
    wake_now("patch-old")
    StepCheckpoint.objects.filter(run_id="patch-old").update(deadline=timezone.now())
    assert advance("patch-old") is AdvanceOutcome.FINISHED
    assert WorkflowRun.objects.get(pk="patch-old").status == RunStatus.SUCCEEDED
    assert marks("patch-old") == ["deploy:patch-old:done"], "the old run keeps the old branch"
    durable.start("patch-new", "deploy_flow", "new", 0)
    assert advance("patch-new") is AdvanceOutcome.FINISHED
    assert marks("patch-new") == ["deploy:patch-new:audit", "deploy:patch-new:done"]
    marker = StepCheckpoint.objects.get(run_id="patch-new", position=0)
    assert (marker.kind, marker.name, marker.result) == ("patch", "patch:audit", True)


def test_arguments_that_no_longer_fit_block_but_a_type_error_inside_the_body_fails(code):
    parked("sig-1")
    parked("bug-1")
    code(flows.new_parameter)
    wake_now("sig-1")
    assert advance("sig-1") is AdvanceOutcome.BLOCKED
    run = WorkflowRun.objects.get(pk="sig-1")
    assert run.status == RunStatus.BLOCKED and "extra" in run.blocked_reason
    assert run.blocked_kind == BlockedKind.CANNOT_REPLAY
    code(flows.body_type_error)
    wake_now("bug-1")
    StepCheckpoint.objects.filter(run_id="bug-1").update(deadline=timezone.now())
    assert advance("bug-1") is AdvanceOutcome.FINISHED
    assert WorkflowRun.objects.get(pk="bug-1").status == RunStatus.FAILED


def test_a_version_no_live_worker_has_blocks_and_one_a_live_worker_has_is_left_to_it():
    durable.start("ver-1", "deploy_flow", "x", 30)
    WorkflowRun.objects.filter(pk="ver-1").update(workflow_version=2)
    assert advance("ver-1") is AdvanceOutcome.BLOCKED
    run = WorkflowRun.objects.get(pk="ver-1")
    assert run.status == RunStatus.BLOCKED and run.blocked_reason == "no worker has deploy_flow v2"
    assert run.blocked_kind == BlockedKind.VERSION_MISSING
    EngineHeartbeat.objects.create(
        kind="worker", host="other", pid=1, last_seen=timezone.now(), workflows=["deploy_flow@2"]
    )
    recovery.resume_blocked(["ver-1"])
    assert advance("ver-1") is AdvanceOutcome.DEFERRED
    run = WorkflowRun.objects.get(pk="ver-1")
    assert run.status == RunStatus.PENDING and run.wake_at > timezone.now(), "given back, not spun"
    assert poll_once() == [], "not before its wake-up time"
    assert StepCheckpoint.objects.filter(run_id="ver-1").count() == 0


def test_the_poller_resumes_a_run_blocked_for_its_version_once_a_live_worker_lists_it():
    durable.start("ver-2", "deploy_flow", "x", 30)
    WorkflowRun.objects.filter(pk="ver-2").update(workflow_version=3)
    assert advance("ver-2") is AdvanceOutcome.BLOCKED
    health.PollerHeartbeat().tick()
    assert WorkflowRun.objects.get(pk="ver-2").status == RunStatus.BLOCKED, "no worker has v3"
    EngineHeartbeat.objects.create(
        kind="worker", host="other", pid=2, last_seen=timezone.now(), workflows=["deploy_flow@3"]
    )
    health.PollerHeartbeat().tick()
    assert WorkflowRun.objects.get(pk="ver-2").status == RunStatus.PENDING


def test_the_poller_resumes_by_the_kind_of_block_whatever_its_reason_says():
    durable.start("ver-3", "deploy_flow", "x", 30)
    WorkflowRun.objects.filter(pk="ver-3").update(workflow_version=4)
    assert advance("ver-3") is AdvanceOutcome.BLOCKED
    # The reason is for people: rewording it must not stop the resumption.
    WorkflowRun.objects.filter(pk="ver-3").update(blocked_reason="deploy_flow v4: on no worker")
    EngineHeartbeat.objects.create(
        kind="worker", host="other", pid=3, last_seen=timezone.now(), workflows=["deploy_flow@4"]
    )
    health.PollerHeartbeat().tick()
    assert WorkflowRun.objects.get(pk="ver-3").status == RunStatus.PENDING


def test_runs_blocked_before_the_kind_existed_get_it_from_their_reason():
    migration = importlib.import_module("durable.migrations.0005_run_blocked_kind")
    for run_id, reason in [("old-v", "no worker has deploy_flow v9"), ("old-d", "diverged")]:
        durable.start(run_id, "deploy_flow", "x", 30)
        WorkflowRun.objects.filter(pk=run_id).update(
            status=RunStatus.BLOCKED, blocked_reason=reason, blocked_kind=""
        )
    migration.kind_from_reason(django_apps, None)
    kinds = dict(WorkflowRun.objects.values_list("id", "blocked_kind"))
    assert kinds["old-v"] == BlockedKind.VERSION_MISSING
    assert kinds["old-d"] == BlockedKind.CANNOT_REPLAY


def test_new_runs_start_on_the_highest_version_and_older_runs_keep_theirs(code):
    parked("v1-run")
    code(flows.inserted_step, version=2)
    durable.start("v2-run", "deploy_flow", "y", 0)
    assert WorkflowRun.objects.get(pk="v1-run").workflow_version == 1
    assert WorkflowRun.objects.get(pk="v2-run").workflow_version == 2
    assert advance("v2-run") is AdvanceOutcome.FINISHED
    assert marks("v2-run") == ["deploy:v2-run:audit", "deploy:v2-run:done"]
    durable.send_signal("v1-run", "go")
    assert advance("v1-run") is AdvanceOutcome.FINISHED, "v1 code still replays v1 runs"
    assert marks("v1-run") == ["deploy:v1-run:done"]


def test_a_worker_starting_records_its_versions_and_resumes_the_blocked_runs_it_has(code):
    parked("start-1")
    code(flows.inserted_step)
    wake_now("start-1")
    advance("start-1")
    code(flows.deploy_flow)
    durable.start("start-2", "deploy_flow", "z", 30)
    WorkflowRun.objects.filter(pk="start-2").update(
        workflow_version=7, status=RunStatus.BLOCKED, blocked_reason="no worker has deploy_flow v7"
    )
    recovery.on_worker_start()
    assert WorkflowRun.objects.get(pk="start-1").status == RunStatus.PENDING
    assert WorkflowRun.objects.get(pk="start-2").status == RunStatus.BLOCKED, "not a version it has"
    beat = EngineHeartbeat.objects.get(kind="worker")
    assert "deploy_flow@1" in beat.workflows


def blocked_run(code, run_id: str) -> None:
    parked(run_id)
    code(flows.inserted_step)
    wake_now(run_id)
    assert advance(run_id) is AdvanceOutcome.BLOCKED


def test_readyz_is_not_ok_while_a_run_is_blocked_and_names_no_run(code, client: Client):
    blocked_run(code, "ready-1")
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503 and "1 workflow run(s) blocked" in body["detail"]
    assert body["runs"]["blocked"] == 1 and "ready-1" not in json.dumps(body)


def test_the_workflows_command_lists_and_shows_the_reason_and_resume_stuck_resumes(code, capsys):
    blocked_run(code, "cli-1")
    call_command("workflows", "list", "--status", "blocked")
    listing = capsys.readouterr().out
    assert "cli-1" in listing and "blocked: replay diverged" in listing
    assert "deploy_flow v1" in listing
    call_command("workflows", "show", "cli-1")
    shown = capsys.readouterr().out
    assert "blocked   replay diverged" in shown and "version   1" in shown
    code(flows.deploy_flow)
    call_command("resume_stuck_workflows", "--inline")
    out = capsys.readouterr().out
    assert "blocked: replay diverged" in out and "cli-1\tsuspended" in out
    assert WorkflowRun.objects.get(pk="cli-1").status == RunStatus.WAITING, "back at its wait"


def test_the_admin_retry_action_needs_the_change_permission(code, client: Client):
    blocked_run(code, "adm-1")
    staff = get_user_model().objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_workflowrun"))
    client.force_login(staff)
    url = reverse("admin:durable_workflowrun_changelist")
    page = client.get(url)
    assert page.status_code == 200 and b"retry_blocked" not in page.content
    assert b"replay diverged at position 0" in page.content, "the reason is in the list"
    client.post(url, {"action": "retry_blocked", "_selected_action": ["adm-1"]})
    assert WorkflowRun.objects.get(pk="adm-1").status == RunStatus.BLOCKED
    staff.user_permissions.add(Permission.objects.get(codename="change_workflowrun"))
    staff = get_user_model().objects.get(pk=staff.pk)
    client.force_login(staff)
    assert b"retry_blocked" in client.get(url).content
    response = client.post(
        url, {"action": "retry_blocked", "_selected_action": ["adm-1"]}, follow=True
    )
    assert b"Retrying 1 blocked run" in response.content
    assert WorkflowRun.objects.get(pk="adm-1").status == RunStatus.PENDING


def test_a_blocked_runs_wait_deadline_does_not_move(code):
    parked("deadline-1", timeout=30)
    deadline = StepCheckpoint.objects.get(run_id="deadline-1").deadline
    code(flows.inserted_step)
    wake_now("deadline-1")
    advance("deadline-1")
    code(flows.deploy_flow)
    recovery.resume_blocked()
    assert advance("deadline-1") is AdvanceOutcome.SUSPENDED
    assert StepCheckpoint.objects.get(run_id="deadline-1").deadline == deadline
    assert WorkflowRun.objects.get(pk="deadline-1").wake_at == deadline
    assert deadline - timezone.now() < dt.timedelta(seconds=30)


def test_replay_check_flags_an_incompatible_change_executes_nothing_and_passes_a_patch(code):
    parked("check-1")
    durable.start("check-2", "deploy_flow", "done", 0)
    assert advance("check-2") is AdvanceOutcome.FINISHED
    checkpoints = StepCheckpoint.objects.count()
    call_command("workflows", "replay-check")
    code(flows.inserted_step)
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 run\\(s\\) replayed, 2 would be blocked") as failed:
        call_command("workflows", "replay-check", "--since", "1h", stdout=out)
    assert failed.value.returncode == 1
    assert "check-1\tdeploy_flow v1\twaiting\treplay diverged at position 0" in out.getvalue()
    assert StepCheckpoint.objects.count() == checkpoints and marks("check-1") == []
    assert WorkflowRun.objects.get(pk="check-1").status == RunStatus.WAITING
    code(flows.patched_step)
    out = io.StringIO()
    call_command("workflows", "replay-check", "--workflow", "deploy_flow", stdout=out)
    assert "2 run(s) replayed, 0 would be blocked" in out.getvalue()
