"""Deploys with runs in flight, with real django-q2 clusters and pollers: a cluster SIGKILLed and
restarted on incompatible code blocks the runs (none fails or finishes), a rollback finishes
every one as decided (a workflow signal accepted while blocked included), the same change made
with `ctx.patched()` blocks nothing, and a run on a version no cluster has waits, blocked, for
a cluster that has it."""

from __future__ import annotations

import signal

import pytest
from django.test import Client

import durable
from devtools.processes import poller, running, wait_until, worker
from durable.core import registry
from durable.models import RunStatus, WorkflowRun
from tests.durable.deploy_workflows import inserted_step
from tests.durable.example_workflows import effect_count
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]

RUNS = ["deploy-0", "deploy-1", "deploy-2", "deploy-3"]
MODULES = "tests.durable.deploy_workflows"


def env(change: str = "") -> dict[str, str]:
    return process_env(DURABLE_WORKFLOW_MODULES=MODULES, Q_WORKERS="2", DEPLOY_CHANGE=change)


def statuses() -> dict[str, str]:
    return dict(WorkflowRun.objects.filter(pk__in=RUNS).values_list("id", "status"))


def all_in(*wanted: str):
    return lambda: set(statuses().values()) <= set(wanted) and len(statuses()) == len(RUNS)


def start_parked_runs(cluster) -> None:
    # deploy-0 waits long (its "go" is always in time); the others time out soon.
    durable.start("deploy-0", "deploy_flow", "zero", 600)
    for run_id in RUNS[1:]:
        durable.start(run_id, "deploy_flow", run_id, 2)
    wait_until(all_in(RunStatus.WAITING), 60, message=cluster.log())


def marks(label: str) -> int:
    return sum(effect_count(f"deploy:{run_id}:{label}") for run_id in RUNS)


def test_incompatible_code_blocks_runs_and_a_rollback_finishes_them_as_decided():
    v1 = worker(env(), name="deploy-v1")
    with running(v1, poller(env())):
        start_parked_runs(v1)
        v1.kill(signal.SIGKILL)
        incompatible = worker(env("inserted_step"), name="deploy-incompatible")
        with running(incompatible):
            assert durable.send_signal("deploy-0", "go", "customer").accepted
            wait_until(all_in(RunStatus.BLOCKED), 90, message=incompatible.log())
            assert marks("audit") == marks("done") == 0, "nothing ran on the incompatible code"
            # Still blocked, not failed or retried in a loop; visible to readiness checks.
            wait_until(lambda: incompatible.log().count("status=blocked") >= len(RUNS), 30)
            assert all_in(RunStatus.BLOCKED)()
            readyz = Client().get("/readyz").json()
            assert readyz["runs"]["blocked"] == len(RUNS) and "blocked" in readyz["detail"]
            incompatible.kill(signal.SIGKILL)
        assert incompatible.log().count("status=blocked") == len(RUNS), "one log line per run"
        v1.start()  # the rollback: its workers resume the blocked runs when they start
        wait_until(all_in(RunStatus.SUCCEEDED), 90, message=v1.log())
    results = {run.id: run.result for run in WorkflowRun.objects.filter(pk__in=RUNS)}
    assert results["deploy-0"]["go"] is True, "the signal accepted while blocked was honoured"
    assert all(results[run_id]["go"] is False for run_id in RUNS[1:])
    assert marks("done") == len(RUNS) and marks("audit") == 0
    assert all(effect_count(f"deploy:{run_id}:done") == 1 for run_id in RUNS)


def test_the_same_change_made_with_a_patch_blocks_nothing():
    v1 = worker(env(), name="deploy-v1-patch")
    with running(v1, poller(env())):
        start_parked_runs(v1)
        v1.kill(signal.SIGKILL)
        patched = worker(env("patched_step"), name="deploy-patched")
        with running(patched):
            assert durable.send_signal("deploy-0", "go", "customer").accepted
            wait_until(all_in(RunStatus.SUCCEEDED), 90, message=patched.log())
            durable.start("deploy-new", "deploy_flow", "new", 0)
            wait_until(lambda: WorkflowRun.objects.get(pk="deploy-new").is_finished, 60)
    assert "status=blocked" not in patched.log()
    assert marks("done") == len(RUNS) and marks("audit") == 0, "old runs keep the old branch"
    assert effect_count("deploy:deploy-new:audit") == effect_count("deploy:deploy-new:done") == 1


def test_a_version_no_worker_has_is_blocked_until_a_cluster_with_it_starts(monkeypatch):
    versions = {**registry._workflows["deploy_flow"], 2: inserted_step}
    monkeypatch.setitem(registry._workflows, "deploy_flow", versions)  # this process starts v2
    old = worker(env(), name="deploy-old-cluster")
    new = worker(
        {**env(), "DURABLE_WORKFLOW_MODULES": f"{MODULES},tests.durable.deploy_versions"},
        name="deploy-new-cluster",
    )
    with running(old, poller(env())):
        durable.start("on-v2", "deploy_flow", "two", 0)
        wait_until(lambda: run("on-v2").status == RunStatus.BLOCKED, 60, message=old.log())
        assert run("on-v2").blocked_reason == "no worker has deploy_flow v2"
        assert run("on-v2").workflow_version == 2 and effect_count("deploy:on-v2:") == 0
        with running(new):
            wait_until(lambda: run("on-v2").status == RunStatus.SUCCEEDED, 90, message=new.log())
    assert effect_count("deploy:on-v2:audit") == effect_count("deploy:on-v2:done") == 1


def run(run_id: str) -> WorkflowRun:
    return WorkflowRun.objects.get(pk=run_id)
