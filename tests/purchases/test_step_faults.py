"""A purchase through faults at its checkout: transient database errors, and a real bug."""

from __future__ import annotations

import functools

import pytest

from durable.runtime import executor
from purchases import services
from purchases.models import Order
from purchases.selectors import purchase_status
from tests.support.inline import finish
from tests.support.transient_errors import provoke_transient_error

pytestmark = pytest.mark.django_db(transaction=True)


def checkout_failing_first(times: int, fault=provoke_transient_error):
    """services.checkout (same step name), meeting `fault` on its first `times` calls."""
    real_checkout = services.checkout
    calls = []

    @functools.wraps(real_checkout)
    def checkout(run_id: str):
        calls.append(run_id)
        if len(calls) <= times:
            fault()
        return real_checkout(run_id)

    checkout.calls = calls
    return checkout


def bug() -> None:
    raise KeyError("price")


def test_transient_errors_at_checkout_delay_a_purchase_but_do_not_fail_it(
    alice, product, short_window, monkeypatch
):
    failures = executor.TRANSIENT_RETRIES_IN_PLACE + 3  # more than the step's 3 attempts
    checkout = checkout_failing_first(failures)
    monkeypatch.setattr(services, "checkout", checkout)
    bought = services.buy(alice, "k-transient", product.item_id)
    finish([bought.purchase.run_id])
    status = purchase_status(bought.purchase, refresh=True)
    assert status.state == "CONFIRMED", status.result
    assert len(checkout.calls) == failures + 1
    assert Order.objects.filter(purchase=bought.purchase).count() == 1


def test_a_bug_at_checkout_fails_the_purchase_with_a_reason_naming_the_step(
    alice, product, short_window, monkeypatch
):
    monkeypatch.setattr(services, "checkout", checkout_failing_first(99, bug))
    bought = services.buy(alice, "k-bug", product.item_id)
    finish([bought.purchase.run_id])
    status = purchase_status(bought.purchase, refresh=True)
    assert status.result == {
        "state": "PURCHASE_FAILED",
        "item_id": product.item_id,
        "reason": "checkout_failed",
    }
    assert not Order.objects.filter(purchase=bought.purchase).exists()
