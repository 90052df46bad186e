"""Races against real threads and the real database: cancel vs deadline, duplicate buys, stock."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from durable.executor import advance
from durable.models import WorkflowRun
from purchases import services
from purchases.models import Order, Product, Purchase
from tests.support.inline import finish
from tests.support.threads import in_threads

pytestmark = pytest.mark.django_db(transaction=True)


class InlineWorker(threading.Thread):
    """Advances every due run as soon as it is due, like an idle cluster would."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                due = WorkflowRun.objects.filter(
                    status__in=["pending", "waiting"], wake_at__lte=timezone.now()
                ).values_list("pk", flat=True)
                for run_id in list(due):
                    advance(run_id)
                time.sleep(0.002)
        finally:
            connection.close()


def test_cancels_in_the_last_50ms_of_the_window_get_answers_the_outcome_keeps(
    make_user, product, settings
):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.6
    settings.ONECLICK_MAX_PENDING_PURCHASES = 0  # one customer, 40 purchases in their window
    Product.objects.filter(pk=product.pk).update(stock=1000)
    user = make_user("racer")
    keys = [f"race-{n}" for n in range(40)]
    purchases = {key: services.buy(user, key, "widget-001").purchase for key in keys}
    worker = InlineWorker()
    worker.start()
    answers: dict[str, bool] = {}
    rng = random.Random(7)

    def cancel_near_deadline(index: int) -> None:
        key = keys[index]
        deadline = purchases[key].cancel_until.timestamp()
        # Connect now, not at the aim: 40 threads opening connections at once near their
        # deadlines would all answer late (every cancel refused) and the race would not be run.
        connection.ensure_connection()
        # Somewhere in the last 50 ms of the window, or just after it.
        aim = deadline - rng.uniform(-0.01, 0.05)
        time.sleep(max(0.0, aim - time.time()))
        answers[key] = services.cancel(user, key).accepted

    try:
        assert in_threads(len(keys), cancel_near_deadline) == []
        finish([p.run_id for p in purchases.values()])
    finally:
        worker.stop.set()
        worker.join()
    accepted = refused = 0
    for key, purchase in purchases.items():
        purchase.run.refresh_from_db()
        state = purchase.run.result["state"]
        if answers[key]:
            accepted += 1
            assert state == "PURCHASE_CANCELLED", key
            assert not Order.objects.filter(purchase=purchase).exists()
        else:
            refused += 1
            assert state == "PURCHASE_CONFIRMED", key
            assert Order.objects.filter(purchase=purchase).count() == 1
    # Both answers must have happened for the race to mean anything.
    assert accepted > 0 and refused > 0, (accepted, refused)


def test_fifty_concurrent_duplicate_buys_make_one_purchase_and_one_order(
    make_user, product, settings
):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.1
    user = make_user("clicker")
    created: list[bool] = []

    def buy(_: int) -> None:
        created.append(services.buy(user, "double-click", "widget-001").created)

    assert in_threads(50, buy) == []
    assert created.count(True) == 1 and len(created) == 50
    assert Purchase.objects.filter(user=user, key="double-click").count() == 1
    assert WorkflowRun.objects.count() == 1
    finish([services.run_id_for(user.pk, "double-click")])
    assert Order.objects.count() == 1


def test_concurrent_buys_of_the_last_unit_never_oversell(make_user, product, settings):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.05
    Product.objects.filter(pk=product.pk).update(stock=1)
    users = [make_user(f"buyer{n}") for n in range(8)]
    for user in users:
        services.buy(user, "last-unit", "widget-001")
    run_ids = [services.run_id_for(user.pk, "last-unit") for user in users]
    time.sleep(0.1)

    def check_out(index: int) -> None:
        advance(run_ids[index])

    assert in_threads(len(run_ids), check_out) == []
    runs = finish(run_ids)
    states = sorted(run.result["state"] for run in runs.values())
    assert states.count("PURCHASE_CONFIRMED") == 1
    assert states.count("PURCHASE_FAILED") == len(users) - 1
    assert all(
        run.result.get("reason") == "out_of_stock"
        for run in runs.values()
        if run.result["state"] == "PURCHASE_FAILED"
    )
    assert Product.objects.get(pk=product.pk).stock == 0
    assert Order.objects.count() == 1
