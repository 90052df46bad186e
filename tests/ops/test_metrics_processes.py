"""/metrics adds up the figures of real processes: gunicorn's workers answer the requests, a
django-q2 worker runs the checkout step, and one scrape of the web process shows them all."""

from __future__ import annotations

import urllib.request
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from devtools.ports import TEST_SERVERS, free_port
from devtools.processes import poller, running, wait_for_http, wait_until, web
from devtools.processes import worker as cluster
from durable.models import ACTIVE_STATUSES, WorkflowRun
from purchases import services
from purchases.models import Order, Product
from tests.ops.json_http import call
from tests.ops.prometheus import samples, value
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]

TOKEN = "metrics-token-for-the-test"


def scrape(port: int) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return samples(response.read().decode())


def test_one_scrape_of_the_web_process_adds_up_every_process(tmp_path):
    user = get_user_model().objects.create_user("metered", password="unused-pw-123")
    services.save_payment_method(user, "pm_card_visa")
    token = Token.objects.create(user=user).key
    Product.objects.create(item_id="gizmo-m", name="Gizmo", price="4.50", stock=10)
    env = process_env(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        METRICS_TOKEN=TOKEN,
        Q_CLUSTER_NAME=f"ops-metrics-{uuid.uuid4().hex[:8]}",
        REDIS_URL="",
        WEB_CONCURRENCY="2",
        ONECLICK_CANCEL_WINDOW_SECONDS="1",
    )
    port = free_port(TEST_SERVERS)
    processes = (web(env, port), cluster(env), poller(env))
    with running(*processes):
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
        url = f"http://127.0.0.1:{port}"
        for key in ("m-1", "m-2"):
            status, body = call(f"{url}/api/buy/{key}", token, {"item_id": "gizmo-m"})
            assert status == 202, body
        for _ in range(6):
            assert call(f"{url}/api/status/m-1", token)[0] == 200

        def all_confirmed() -> bool:
            return not WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES).exists()

        logs = "\n".join(p.log()[-3000:] for p in processes)
        wait_until(all_confirmed, 120, 0.2, message=logs)
        assert Order.objects.count() == 2
        figures = scrape(port)

    # Recorded by gunicorn's processes (whichever served each request)...
    assert value(figures, "http_requests_total", view="api-buy", method="POST", status="202") == 2
    assert value(figures, "http_requests_total", view="api-status", method="GET", status="200") == 6
    # ...and by the django-q2 worker, which ran the checkouts when the windows closed.
    assert value(figures, "durable_step_duration_seconds_count", step="checkout", outcome="ok") == 2
    assert value(figures, "durable_wait_timeout_lateness_seconds_count") == 2
    assert (
        value(
            figures, "durable_run_transitions_total", workflow="one_click_buy", status="succeeded"
        )
        == 2
    )
    assert value(figures, "durable_runs", status="waiting") == 0
    pids = {path.name for path in tmp_path.iterdir()}
    assert len(pids) >= 3, f"files of the web processes and the worker: {sorted(pids)}"
