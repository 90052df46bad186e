"""Two "machines" share the database (and a broker): each runs the Procfile's web, django-q2
cluster and poller. One machine is SIGKILLed with purchases in flight; the other finishes every
one of them, with the right outcome and exactly one order per confirmed purchase.

It runs twice on each database: with the ORM broker (the two clusters share the database as their
queue) and with a shared Redis (a task in flight in the killed cluster is lost, and the poller of
the survivor redelivers it). On SQLite, which only one machine can use, the two "machines" are
process groups of this one, as they would be in production with SQLite and Redis.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from devtools.ports import TEST_SERVERS, free_port
from devtools.processes import Process, poller, running, wait_for_http, wait_until, web, worker
from durable.models import ACTIVE_STATUSES, RunStatus, WorkflowRun
from purchases import services
from purchases.models import Order, Product, Purchase
from tests.ops.json_http import call
from tests.support.environment import process_env
from tests.support.services import require_redis

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/7"
RUNS = 40
STOCK = 100


class Machine:
    """One machine's processes: web, django-q2 cluster, poller."""

    def __init__(self, label: str, env: dict[str, str]) -> None:
        self.port = free_port(TEST_SERVERS)
        self.web = web(env, self.port, name=f"ops-mm-web-{label}")
        self.cluster = worker(env, name=f"ops-mm-worker-{label}")
        self.poller = poller(env, name=f"ops-mm-poller-{label}")

    @property
    def processes(self) -> tuple[Process, ...]:
        return self.web, self.cluster, self.poller

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def logs(self) -> str:
        return "\n".join(process.log()[-4000:] for process in self.processes)


def wait_for(predicate: Any, timeout: float, *machines: Machine) -> None:
    """wait_until, failing with the machines' logs as they are when it fails."""
    try:
        wait_until(predicate, timeout, 0.2)
    except AssertionError as exc:
        raise AssertionError("\n".join([str(exc), *(m.logs() for m in machines)])) from None


def clean_redis(cluster_name: str) -> None:
    import redis

    client = redis.from_url(REDIS_URL)
    keys = client.keys(f"django_q:{cluster_name}:*")
    if keys:
        client.delete(*keys)


@pytest.fixture(params=["orm", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    """Both brokers, on either database: the database as the queue, and a shared Redis."""
    if request.param == "redis":
        require_redis(REDIS_URL)
    return request.param


def test_one_machine_is_killed_and_the_other_finishes_every_purchase(broker):
    user = get_user_model().objects.create_user("multi", password="unused-pw-123")
    services.save_payment_method(user, "pm_card_visa")
    token = Token.objects.create(user=user).key
    Product.objects.create(item_id="gizmo-mm", name="Gizmo", price="4.50", stock=STOCK)
    cluster_name = f"ops-mm-{uuid.uuid4().hex[:8]}"
    env = process_env(
        Q_CLUSTER_NAME=cluster_name,
        REDIS_URL=REDIS_URL if broker == "redis" else "",
        Q_WORKERS="2",
        WEB_CONCURRENCY="1",
        ONECLICK_CANCEL_WINDOW_SECONDS="3",
        # One customer buys them all, faster than a person could: no bound on pending ones.
        ONECLICK_MAX_PENDING_PURCHASES="0",
        # Every purchase starts as a task, so both clusters surely have work before A dies
        # (eager start would leave them only the wake-ups, which B alone might take).
        ONECLICK_EAGER_START="false",
        DURABLE_HEARTBEAT_SECONDS="1",
        # An ORM-broker cluster that just found work polls every 1 ms, an idle one every
        # Q_POLL_SECONDS: at the default 50 ms, B (busy) would take nearly every task while A
        # waits, and A must have work when it dies. Polling alike, they share the tasks.
        Q_POLL_SECONDS="0.001",
    )
    a, b = Machine("a", env), Machine("b", env)
    cancel_accepted: dict[str, bool] = {}

    def buy(machine: Machine, index: int) -> None:
        key = f"mm-{index:02d}"
        status, body = call(machine.url(f"/api/buy/{key}"), token, {"item_id": "gizmo-mm"})
        assert status == 202, body
        if index % 4 == 0:  # every fourth purchase is cancelled at once, inside its window
            status, body = call(machine.url(f"/api/cancel/{key}"), token, {})
            assert status in (200, 409), body
            cancel_accepted[key] = status == 200

    try:
        with running(*a.processes, *b.processes):
            for machine in (a, b):
                wait_for_http(machine.url("/healthz"), timeout=90)
                wait_for(lambda m=machine: "running." in m.cluster.log(), 90, machine)
            wait_for(lambda: call(b.url("/readyz"))[0] == 200, 90, b)

            for index in range(RUNS // 2):
                buy(a if index % 2 else b, index)
            # Machine A has advanced runs, and dies with others in flight.
            wait_for(lambda: "Processed 'durable.tasks.advance" in a.cluster.log(), 60, a)
            in_flight = WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES).count()
            for process in a.processes:
                process.kill(signal.SIGKILL)
            assert in_flight > 0, "machine A must die with purchases in flight"

            for index in range(RUNS // 2, RUNS):
                buy(b, index)

            def all_finished() -> bool:
                active = WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES)
                return WorkflowRun.objects.count() == RUNS and not active.exists()

            wait_for(all_finished, 240, b)
            assert call(b.url("/readyz"))[0] == 200
    finally:
        if broker == "redis":
            with contextlib.suppress(Exception):
                clean_redis(cluster_name)

    purchases = list(Purchase.objects.select_related("run").order_by("key"))
    assert len(purchases) == RUNS
    assert len(cancel_accepted) == RUNS // 4
    confirmed = 0
    for purchase in purchases:
        run = purchase.run
        assert run.status == RunStatus.SUCCEEDED, (purchase.key, run.status, run.error)
        orders = list(Order.objects.filter(purchase=purchase))
        if cancel_accepted.get(purchase.key):
            assert run.result == {"state": "PURCHASE_CANCELLED", "item_id": "gizmo-mm"}
            assert orders == [] and purchase.cancelled_at is not None
        else:
            assert run.result["state"] == "PURCHASE_CONFIRMED", (purchase.key, run.result)
            assert [order.order_number for order in orders] == [run.result["order_id"]]
            assert orders[0].price_paid == Decimal("4.50")
            # Never confirmed before the deadline fixed at acceptance.
            assert run.finished_at >= purchase.cancel_until
            confirmed += 1
    assert confirmed == RUNS - sum(cancel_accepted.values())
    assert Order.objects.count() == confirmed
    assert Product.objects.get(item_id="gizmo-mm").stock == STOCK - confirmed
