"""/healthz and /readyz: JSON for a load balancer, no login, never a 500."""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from devtools.ports import TEST_SERVERS, free_port
from devtools.processes import running, wait_for_http, web
from durable import tasks
from durable.models import EngineHeartbeat, RunStatus, WorkflowRun
from durable.ops import health
from durable.persistence import heartbeats
from durable.transport import dispatch
from tests.ops.runs import waiting_run
from tests.support.environment import process_env

pytestmark = pytest.mark.django_db


def get(client: Client, path: str) -> tuple[int, dict]:
    response = client.get(path)
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, response.json()


def test_healthz_is_ok_without_logging_in(client):
    assert get(client, "/healthz") == (200, {"status": "ok"})


def test_health_endpoints_answer_other_methods_with_405_not_500(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
    assert client.head("/readyz").status_code == 503


def test_readyz_fails_while_no_poller_or_worker_was_seen(client):
    status, body = get(client, "/readyz")
    assert status == 503
    assert body["status"] == "error"
    assert "no durable poller seen in the last 30s" in body["detail"]
    assert "no django-q2 worker seen in the last 30s" in body["detail"]
    assert body["pollers"] == {"alive": 0, "last_seen_seconds_ago": None}
    assert body["workers"] == {"alive": 0, "last_seen_seconds_ago": None, "runs_leased": 0}


def test_readyz_is_ok_with_fresh_heartbeats_and_reports_the_backlog(client):
    heartbeats.beat(heartbeats.POLLER)
    tasks.worker_probe()
    waiting_run("ops-ready-waiting")
    status, body = get(client, "/readyz")
    assert status == 200, body
    assert body["status"] == "ok" and "detail" not in body
    assert body["pollers"]["alive"] == 1 and body["pollers"]["last_seen_seconds_ago"] < 30
    assert body["workers"]["alive"] == 1
    assert body["runs"] == {
        "pending": 0, "running": 0, "waiting": 1, "overdue": 0, "oldest_overdue_seconds": None,
        "blocked": 0, "blocked_outcome_unknown": 0,
    }  # fmt: skip
    assert isinstance(body["queue_depth"], int)


def test_a_heartbeat_older_than_the_stale_limit_does_not_count(client):
    old = timezone.now() - dt.timedelta(seconds=45)
    EngineHeartbeat.objects.create(kind="poller", host="h", pid=1, last_seen=old)
    EngineHeartbeat.objects.create(kind="worker", host="h", pid=2, last_seen=old)
    status, body = get(client, "/readyz")
    assert status == 503
    assert body["pollers"]["alive"] == 0 and body["pollers"]["last_seen_seconds_ago"] >= 45
    with override_settings(DURABLE={"HEALTH_STALE_SECONDS": 60}):
        assert get(client, "/readyz")[0] == 200


def test_a_worker_holding_a_lease_counts_as_alive_without_a_heartbeat(client):
    heartbeats.beat(heartbeats.POLLER)
    waiting_run("ops-leased")
    WorkflowRun.objects.filter(pk="ops-leased").update(
        status=RunStatus.RUNNING,
        lease_owner="busy-worker",
        lease_expires_at=timezone.now() + dt.timedelta(seconds=10),
    )
    status, body = get(client, "/readyz")
    assert status == 200, body
    assert body["workers"] == {"alive": 0, "last_seen_seconds_ago": None, "runs_leased": 1}
    assert body["runs"]["running"] == 1


def test_overdue_runs_fail_readiness_and_are_named_by_count_and_age(client):
    heartbeats.beat(heartbeats.POLLER)
    tasks.worker_probe()
    for run_id, late in [("ops-late", 300), ("ops-later", 120), ("ops-on-time", 1)]:
        waiting_run(run_id)
        WorkflowRun.objects.filter(pk=run_id).update(
            wake_at=timezone.now() - dt.timedelta(seconds=late)
        )
    status, body = get(client, "/readyz")
    assert status == 503
    assert body["runs"]["waiting"] == 3
    assert body["runs"]["overdue"] == 2
    assert 300 <= body["runs"]["oldest_overdue_seconds"] < 330
    assert body["detail"].startswith("2 run(s) overdue by more than 5s (oldest 3")
    assert "ops-" not in json.dumps(body), "no run ids in a public answer"


def test_a_run_late_by_less_than_the_margin_is_not_overdue(client):
    heartbeats.beat(heartbeats.POLLER)
    tasks.worker_probe()
    waiting_run("ops-just-due")
    WorkflowRun.objects.filter(pk="ops-just-due").update(
        wake_at=timezone.now() - dt.timedelta(seconds=2)
    )
    status, body = get(client, "/readyz")
    assert status == 200, body
    assert body["runs"]["overdue"] == 0


def test_the_poller_heartbeat_writes_its_row_and_probes_a_worker_once_per_interval():
    depth = dispatch.queue_depth()
    with override_settings(DURABLE={"HEARTBEAT_SECONDS": 60}):
        ticker = health.PollerHeartbeat()
        ticker.tick()
        ticker.tick()  # within the interval: nothing
    assert EngineHeartbeat.objects.filter(kind="poller").count() == 1
    assert dispatch.queue_depth() == depth + 1, "one probe task enqueued"

    long_ago = timezone.now() - dt.timedelta(minutes=5)
    with override_settings(DURABLE={"HEARTBEAT_SECONDS": 0}):
        ticker = health.PollerHeartbeat()
        ticker.tick()
        assert dispatch.queue_depth() == depth + 2
        EngineHeartbeat.objects.filter(kind="poller").update(last_seen=long_ago)
        ticker.tick()  # its probe is unanswered: the poller beats but sends no second probe
        assert dispatch.queue_depth() == depth + 2
        assert EngineHeartbeat.objects.get(kind="poller").last_seen > long_ago
        tasks.worker_probe()  # a worker answers
        ticker.tick()
        assert dispatch.queue_depth() == depth + 3


def test_worker_probe_keeps_one_row_per_process():
    tasks.worker_probe()
    tasks.worker_probe()
    row = EngineHeartbeat.objects.get()
    assert (row.kind, row.pid) == ("worker", os.getpid())


def unreachable_database_url() -> str:
    if connection.vendor == "postgresql":
        return "postgres://postgres@127.0.0.1:1/unreachable"
    return "sqlite:////nonexistent-ops-dir/db.sqlite3"


def fetch(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_with_the_database_down_both_answer_503_json_not_500():
    port = free_port(TEST_SERVERS)
    env = process_env(DATABASE_URL=unreachable_database_url())
    server = web(env, port, name="ops-web-nodb")
    with running(server):
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert fetch(f"http://127.0.0.1:{port}/healthz") == (
            503, {"status": "error", "detail": "database unreachable"},
        )  # fmt: skip
        status, body = fetch(f"http://127.0.0.1:{port}/readyz")
    assert (status, body) == (503, {"status": "error", "detail": "database unreachable"})
    assert "127.0.0.1:1" not in json.dumps(body) and "nonexistent" not in json.dumps(body)
