"""Races against real threads and the real database: cancel vs deadline, duplicate buys, stock."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from durable.models import WorkflowRun
from durable.runtime.executor import AdvanceOutcome, advance
from purchases import services
from purchases.models import Order, Product, Purchase
from tests.purchases.conftest import wait_past_the_window
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


# Cancels per round: a few aimed just after the deadline (they are refused, however slow the
# machine: the refused side is certain), the rest spread over the last `lead` seconds before it.
CANCELS, AFTER_THE_DEADLINE = 40, 5


def cancel_round(user, round_number: int, lead: float) -> tuple[int, int, float]:
    """Buy CANCELS purchases, cancel each near its deadline from its own thread while a worker
    decides the timeouts, check every answer against the outcome; return how many cancels were
    accepted and refused, and how long it took from the first buy until the threads were released
    (every purchase bought, every thread connected)."""
    keys = [f"race-{round_number}-{n}" for n in range(CANCELS)]
    started = time.monotonic()
    purchases = {key: services.buy(user, key, "widget-001").purchase for key in keys}
    released: list[float] = []
    rng = random.Random(round_number)
    offsets = [-rng.uniform(0.0, 0.01) for _ in range(AFTER_THE_DEADLINE)]
    offsets += [rng.uniform(0.0, lead) for _ in range(CANCELS - AFTER_THE_DEADLINE)]
    answers: dict[str, bool] = {}

    def cancel_near_deadline(index: int) -> None:
        released.append(time.monotonic())
        key = keys[index]
        aim = purchases[key].cancel_until.timestamp() - offsets[index]
        time.sleep(max(0.0, aim - time.time()))
        answers[key] = services.cancel(user, key).accepted

    worker = InlineWorker()
    worker.start()
    try:
        # Each thread connects before the barrier releases them: 40 connections opened at once
        # near the deadlines would make every answer late.
        assert in_threads(CANCELS, cancel_near_deadline, connect_first=True) == []
        finish([p.run_id for p in purchases.values()])
    finally:
        worker.stop.set()
        worker.join()
    for key, purchase in purchases.items():
        purchase.run.refresh_from_db()
        state = purchase.run.result["state"]
        orders = Order.objects.filter(purchase=purchase).count()
        expected = ("PURCHASE_CANCELLED", 0) if answers[key] else ("PURCHASE_CONFIRMED", 1)
        assert (state, orders) == expected, (key, answers[key])
    accepted = sum(answers.values())
    return accepted, CANCELS - accepted, min(released) - started


def test_cancels_in_the_last_50ms_of_the_window_get_answers_the_outcome_keeps(
    make_user, product, settings
):
    """Cancels race the worker's timeout decision at the deadline; each answer must be what the
    purchase does. The race only means something if both answers happened: the refused side is
    certain (cancels aimed past the deadline); on a day too slow for any cancel aimed in the last
    50 ms to land in time, the next round aims over twice as long a lead (up to 0.8 s)."""
    settings.ONECLICK_MAX_PENDING_PURCHASES = 0  # one customer, 40 purchases in their window
    Product.objects.filter(pk=product.pk).update(stock=1000)
    user = make_user("racer")
    rounds = []
    setup = 0.7
    for round_number, lead in enumerate((0.05, 0.1, 0.2, 0.4, 0.8)):
        # The window leaves time to buy every purchase and start every thread before the first
        # aim (half as long again as it took the round before).
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = lead + 1.5 * setup
        accepted, refused, setup = cancel_round(user, round_number, lead)
        rounds.append((lead, accepted, refused))
        assert refused >= AFTER_THE_DEADLINE, rounds
        if accepted > 0:
            break
    assert rounds[-1][1] > 0, f"no cancel landed in time in any round: {rounds}"


def all_inside_at_once(count: int, original: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, made to wait until `count` threads are inside it before any goes on: on
    PostgreSQL, the proof that they all raced in the critical section. SQLite lets one writer
    in at a time (its transactions begin with the write lock), so there the wrapper is a no-op."""
    if connection.vendor == "sqlite":
        return original
    barrier = threading.Barrier(count, timeout=60)

    @functools.wraps(original)  # a workflow step keeps its recorded name
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return original(*args, **kwargs)

    return wrapper


def test_fifty_concurrent_duplicate_buys_make_one_purchase_and_one_order(
    make_user, product, settings, monkeypatch
):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.1
    user = make_user("clicker")
    created: list[bool] = []
    # Every buy is inside its transaction, about to write its purchase, before any writes it.
    create = Purchase.objects.create
    monkeypatch.setattr(Purchase.objects, "create", all_inside_at_once(50, create))

    def buy(_: int) -> None:
        created.append(services.buy(user, "double-click", "widget-001").created)

    assert in_threads(50, buy) == []
    assert created.count(True) == 1 and len(created) == 50
    assert Purchase.objects.filter(user=user, key="double-click").count() == 1
    assert WorkflowRun.objects.count() == 1
    finish([services.run_id_for(user.pk, "double-click")])
    assert Order.objects.count() == 1


def test_concurrent_buys_of_the_last_unit_never_oversell(make_user, product, settings, monkeypatch):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.05
    Product.objects.filter(pk=product.pk).update(stock=1)
    users = [make_user(f"buyer{n}") for n in range(8)]
    purchases = [services.buy(user, "last-unit", "widget-001").purchase for user in users]
    run_ids = [purchase.run_id for purchase in purchases]
    wait_past_the_window(purchases[-1])
    # Every checkout is inside its run's transaction before any takes the stock.
    monkeypatch.setattr(services, "checkout", all_inside_at_once(8, services.checkout))

    def check_out(index: int) -> None:
        assert advance(run_ids[index]) is AdvanceOutcome.FINISHED

    assert in_threads(len(run_ids), check_out) == []
    runs = finish(run_ids)
    results = sorted((run.result["state"], run.result.get("reason")) for run in runs.values())
    assert results == [("PURCHASE_CONFIRMED", None)] + [("PURCHASE_FAILED", "out_of_stock")] * 7
    assert Product.objects.get(pk=product.pk).stock == 0
    assert Order.objects.count() == 1
