"""Purchases in flight across a bad deploy and its rollback, with real django-q2 clusters: on
incompatible code every purchase is blocked (none confirmed, failed or cancelled by it), a cancel
accepted while blocked wins after the rollback, a cancel refused after the window is confirmed,
and every confirmed purchase has exactly one order."""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from devtools.processes import poller, running, wait_until, worker
from durable.models import RunStatus, WorkflowRun
from purchases import services
from purchases.models import Order, Product, Purchase
from purchases.selectors import purchase_status
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]

KEYS = ["p0", "p1", "p2", "p3"]


def env(change: str = "") -> dict[str, str]:
    return process_env(
        DURABLE_WORKFLOW_MODULES="tests.purchases.deploy_changes", PURCHASE_CHANGE=change
    )


def statuses() -> set[str]:
    run_ids = Purchase.objects.values_list("run_id", flat=True)
    return set(WorkflowRun.objects.filter(pk__in=run_ids).values_list("status", flat=True))


def test_a_bad_deploy_blocks_purchases_and_the_rollback_ends_each_as_the_customer_decided(
    settings,
):
    customer = get_user_model().objects.create_user("deployer", password="pw-deployer-1")
    services.save_payment_method(customer, "pm_card_visa")
    Product.objects.create(item_id="widget-001", name="Widget", price=Decimal("5"), stock=10)
    v1 = worker(env(), name="purchases-v1")
    with running(v1, poller(env())):
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = 600  # p0's window stays open throughout
        services.buy(customer, "p0", "widget-001")
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = 2
        for key in KEYS[1:]:
            services.buy(customer, key, "widget-001")
        wait_until(lambda: statuses() == {RunStatus.WAITING}, 60, message=v1.log())
        v1.kill(signal.SIGKILL)
        bad = worker(env("step_before_the_wait"), name="purchases-bad")
        with running(bad):
            assert services.cancel(customer, "p0").accepted
            wait_until(lambda: statuses() == {RunStatus.BLOCKED}, 90, message=bad.log())
            assert not services.cancel(customer, "p1").accepted, "its window has closed"
            status = purchase_status(Purchase.objects.get(key="p0"))
            assert status.status == "pending" and status.delayed
            assert Order.objects.count() == 0
        v1.start()  # the rollback
        wait_until(lambda: statuses() == {RunStatus.SUCCEEDED}, 90, message=v1.log())
    states = {p.key: purchase_status(p).state for p in Purchase.objects.all()}
    assert states == {"p0": "CANCELLED", "p1": "CONFIRMED", "p2": "CONFIRMED", "p3": "CONFIRMED"}
    assert Order.objects.count() == 3
    assert not Order.objects.filter(purchase__key="p0").exists()
    assert Product.objects.get().stock == 7
