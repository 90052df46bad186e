"""Every live django-q2 worker is seen live whatever the cluster's size: each worker process
beats on its own, and its beats resume the runs blocked for want of a version it has."""

from __future__ import annotations

import datetime as dt

import pytest

import durable
import tests.durable.deploy_workflows  # noqa: F401 - registers deploy_flow v1
from devtools.processes import poller, running, wait_until, worker
from durable.core import registry
from durable.models import BlockedKind, EngineHeartbeat, RunStatus, WorkflowRun
from durable.ops import run_reports
from durable.ops.worker_heartbeat import WorkerHeartbeat
from durable.persistence import heartbeats, store
from tests.durable.deploy_workflows import inserted_step
from tests.support.environment import process_env

MODULES = "tests.durable.deploy_workflows"


@pytest.mark.django_db(transaction=True)
def test_a_workers_beats_resume_runs_blocked_for_its_version_after_it_started(settings):
    settings.DURABLE = {**settings.DURABLE, "HEARTBEAT_SECONDS": 0.05}
    beating = WorkerHeartbeat().start()
    try:
        durable.start("late-block", "deploy_flow", "x", 30)
        # Blocked after this worker started, by a worker that saw no live one with the version.
        WorkflowRun.objects.filter(pk="late-block").update(
            status=RunStatus.BLOCKED,
            blocked_kind=BlockedKind.VERSION_MISSING,
            blocked_reason="no worker has deploy_flow v1",
        )
        wait_until(lambda: WorkflowRun.objects.get(pk="late-block").status == RunStatus.PENDING, 30)
    finally:
        beating.stop()
    assert EngineHeartbeat.objects.get(kind=heartbeats.WORKER).workflows == registry.registered()


def live_workers() -> int:
    return run_reports.engine_status().workers.alive


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_all_eight_workers_of_a_cluster_are_live_and_a_v2_run_waits_for_the_live_v2_worker(
    monkeypatch, settings
):
    versions = {**registry._workflows["deploy_flow"], 2: inserted_step}
    monkeypatch.setitem(registry._workflows, "deploy_flow", versions)  # this process starts v2
    stale = 5.0
    settings.DURABLE = {**settings.DURABLE, "HEARTBEAT_SECONDS": 1, "HEALTH_STALE_SECONDS": stale}
    timers = {"DURABLE_HEARTBEAT_SECONDS": "1", "DURABLE_HEALTH_STALE_SECONDS": str(stale)}
    v1_env = process_env(DURABLE_WORKFLOW_MODULES=MODULES, **timers)
    cluster = worker({**v1_env, "Q_WORKERS": "8"}, name="liveness-8-workers")
    # A live v2 worker that takes none of this queue's tasks (nor its probes): a queue of its own.
    v2 = worker(
        process_env(
            DURABLE_WORKFLOW_MODULES=f"{MODULES},tests.durable.deploy_versions",
            Q_WORKERS="1", Q_CLUSTER_NAME="liveness-elsewhere", **timers,
        ),
        name="liveness-v2-worker",
    )  # fmt: skip
    with running(cluster, v2, poller(v1_env)):
        wait_until(
            lambda: EngineHeartbeat.objects.filter(kind=heartbeats.WORKER).count() == 9, 90,
            message=cluster.log() + v2.log(),
        )  # fmt: skip
        # Past here the beats every worker wrote as it started are stale: only beats since count
        # (the poller's probes alone reach at most one worker per HEARTBEAT_SECONDS).
        all_started = store.db_now()
        wait_until(lambda: store.db_now() > all_started + dt.timedelta(seconds=stale), 30)
        wait_until(lambda: live_workers() == 9, 30, message=f"{live_workers()} live of 9")
        durable.start("on-v2", "deploy_flow", "two", 0)
        # The 8-worker cluster lacks v2: it gives the run back for the live v2 worker, again and
        # again (the poller offers it anew), and never blocks it.
        offers: set[dt.datetime] = set()

        def given_back() -> bool:
            run = WorkflowRun.objects.get(pk="on-v2")
            assert run.status != RunStatus.BLOCKED, run.blocked_reason
            if run.status == RunStatus.PENDING and run.wake_at and not run.lease_owner:
                offers.add(run.wake_at)
            return len(offers) >= 3

        wait_until(given_back, 60, message=cluster.log())
        assert live_workers() == 9
    assert WorkflowRun.objects.get(pk="on-v2").blocked_at is None, "never blocked"
