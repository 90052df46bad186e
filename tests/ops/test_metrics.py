"""GET /metrics: Prometheus text for staff or a token holder, with the engine's and the HTTP
figures, added up across the processes that recorded them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

import durable
from durable.models import WorkflowRun
from durable.persistence import heartbeats
from durable.runtime.executor import advance
from purchases import services
from tests.durable import example_workflows  # noqa: F401 - registers the example workflows
from tests.ops.prometheus import scrape, value
from tests.support.inline import finish

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db) -> Client:
    user = get_user_model().objects.create_user("ops", password="pw-ops-123", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def test_only_staff_or_the_token_may_scrape(make_user, settings, staff_client):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert Client().get("/metrics").status_code == 404
    customer = Client()
    customer.force_login(make_user("carol"))
    assert customer.get("/metrics").status_code == 404
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    scrape(Client(), HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    scrape(staff_client)
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db(transaction=True)  # a purchase confirmed in its start counts on commit
def test_a_scrape_has_the_engine_and_http_figures(staff_client, make_user, product, settings):
    before = scrape(staff_client)
    customer = make_user("carol")
    # m1 times out at once and is confirmed; m2's window outlasts any machine's cancel.
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0
    services.buy(customer, "m1", "widget-001")
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 600
    services.buy(customer, "m2", "widget-001")
    run_ids = [services.run_id_for(customer.pk, key) for key in ("m1", "m2")]
    advance(run_ids[1])
    assert services.cancel(customer, "m2").accepted
    finish(run_ids)
    durable.start("m-waiting", "send_with_undo", "hello", 600)
    advance("m-waiting")
    durable.start("m-late", "send_with_undo", "hello", 600)
    advance("m-late")
    WorkflowRun.objects.filter(pk="m-late").update(
        wake_at=timezone.now() - dt.timedelta(seconds=40)
    )
    heartbeats.beat(heartbeats.POLLER)
    after = scrape(staff_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "durable_runs", status="waiting") == 2
    assert value(after, "durable_runs", status="pending") == 0
    assert value(after, "durable_runs_overdue") == 1
    assert 40 <= value(after, "durable_oldest_overdue_seconds") < 100
    assert ("durable_queue_depth", ()) in after
    assert value(after, "durable_step_calls_in_flight") == 0
    assert value(after, "durable_processes_alive", kind="poller") == 1
    assert grew("durable_step_duration_seconds_count", step="checkout", outcome="ok") == 1
    assert (
        grew("durable_step_duration_seconds_count", step="record_cancellation", outcome="ok") == 1
    )
    assert grew("durable_wait_timeout_lateness_seconds_count") == 1
    assert grew("durable_workflow_signal_to_resume_seconds_count") == 1
    # Both purchases' runs succeeded: one confirmed, one cancelled by its customer.
    assert grew("durable_run_transitions_total", workflow="one_click_buy", status="succeeded") == 2
    assert grew("http_requests_total", view="metrics", method="GET", status="200") == 1


def test_step_failures_are_counted_by_step_name(staff_client, settings):
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_SECONDS": 0.01}
    before = scrape(staff_client)
    durable.start("m-flaky", "flaky", 2, 5)
    finish(["m-flaky"])
    after = scrape(staff_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("durable_step_failures_total", step="flaky") == 2
    assert grew("durable_step_duration_seconds_count", step="flaky", outcome="error") == 2
    assert grew("durable_step_duration_seconds_count", step="flaky", outcome="ok") == 1


def test_http_requests_are_counted_by_view_not_by_path(make_user, product):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(make_user("dave"))
    api.post("/api/buy/h1", {"item_id": "widget-001"}, format="json")
    api.get("/api/status/h1")
    api.get("/api/status/unknown-key")
    from oneclick_project.http_metrics import REQUESTS

    text = "\n".join(
        f"{s.labels}" for m in REQUESTS.collect() for s in m.samples if s.name.endswith("_total")
    )
    assert "h1" not in text and "unknown-key" not in text
    assert re.search(r"'view': 'api-status', 'method': 'GET', 'status': '404'", text)
