"""The workflow after the window against a real local provider (localstripe), advanced in the
test process: charged once for the click's price, a decline, a cancel, out of stock, and the
email each one sends. Charges are counted at the provider, not in our code."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import stripe
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from devtools.stripe_provider import TEST_API_KEY, captured_charges
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from durable.runtime.executor import advance
from purchases import payments, services
from purchases.models import Order, PaymentState, Product, Purchase
from purchases.notifications import message_id
from tests.purchases.conftest import wait_past_the_window
from tests.support.inline import finish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def direct(provider) -> stripe.StripeClient:
    """A client of localstripe itself, to count what it took."""
    return stripe.StripeClient(TEST_API_KEY, base_addresses={"api": provider.api_base})


@pytest.fixture
def shopper(make_user):
    user = make_user("erin", "pw-erin-123")
    user.email = "erin@example.com"
    user.save(update_fields=["email"])
    return user


def buy_and_finish(user, key: str, item_id: str = "widget-001") -> Purchase:
    purchase = services.buy(user, key, item_id).purchase
    wait_past_the_window(purchase)
    finish([purchase.run_id])
    purchase.refresh_from_db()
    return purchase


def test_a_confirmed_purchase_is_charged_once_for_its_price_and_says_so(
    shopper, product, short_window, direct, settings
):
    purchase = buy_and_finish(shopper, "k1")
    assert purchase.run.result == {
        "state": "PURCHASE_CONFIRMED", "item_id": "widget-001",
        "order_id": Order.objects.get(purchase=purchase).order_number,
    }  # fmt: skip
    charges = captured_charges(direct, purchase.customer_id)
    assert len(charges) == 1
    (charge,) = charges
    assert (charge["amount"], charge["currency"]) == (999, "usd")
    assert charge["payment_intent"] == purchase.payment_intent_id
    intent = direct.v1.payment_intents.retrieve(purchase.payment_intent_id)
    assert intent.metadata["purchase"] == "k1"
    assert intent.metadata["order_number"] == purchase.order.order_number
    assert purchase.payment_state == PaymentState.PAID and purchase.paid_at is not None
    (email,) = mail.outbox
    assert email.to == ["erin@example.com"]
    assert purchase.order.order_number in email.subject
    assert "Visa \u2022\u2022\u2022\u2022 4242 was charged 9.99 USD" in email.body
    # The Message-ID is the email step's key's: the same on every attempt of that step.
    step = purchase.run.checkpoints.get(name="send_email")
    assert email.extra_headers["Message-ID"] == message_id(f"{purchase.run_id}:{step.position}")
    assert email.message()["Message-ID"] == email.extra_headers["Message-ID"]


def test_a_price_changed_after_the_click_is_not_what_is_charged(shopper, product, settings, direct):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.5
    purchase = services.buy(shopper, "k1", "widget-001").purchase
    Product.objects.filter(pk=product.pk).update(price=Decimal("19.99"))
    wait_past_the_window(purchase)
    finish([purchase.run_id])
    (charge,) = captured_charges(direct, purchase.customer_id)
    assert charge["amount"] == 999


def test_a_declined_card_releases_the_stock_and_fails_the_purchase_with_the_providers_message(
    shopper, give_card, product, short_window, direct
):
    give_card(shopper, "pm_card_chargeCustomerFail")
    purchase = buy_and_finish(shopper, "k1")
    result = purchase.run.result
    assert (result["state"], result["reason"]) == ("PURCHASE_FAILED", "payment_declined")
    assert result["message"] == "Your card was declined."
    assert purchase.payment_state == PaymentState.DECLINED
    assert purchase.payment_message == "Your card was declined."
    assert not Order.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == product.stock
    assert captured_charges(direct, purchase.customer_id) == []
    # One attempt: a decline is an answer, never retried.
    charge_step = purchase.run.checkpoints.get(name="charge")
    assert charge_step.attempts == 1
    (email,) = mail.outbox
    assert "did not go through" in email.body and "Your card was declined." in email.body


def test_a_cancel_inside_the_window_never_calls_the_provider(shopper, product, settings, direct):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60
    purchase = services.buy(shopper, "k1", "widget-001").purchase
    assert services.cancel(shopper, "k1").accepted
    finish([purchase.run_id])
    purchase.refresh_from_db()
    assert purchase.run.result["state"] == "PURCHASE_CANCELLED"
    intents = direct.v1.payment_intents.list(params={"limit": 100}).data
    assert [i for i in intents if i.customer == purchase.customer_id] == []
    assert purchase.payment_state == PaymentState.NONE
    (email,) = mail.outbox
    assert email.subject.startswith("Cancelled")


def test_out_of_stock_is_never_charged(shopper, product, short_window, direct):
    Product.objects.filter(pk=product.pk).update(stock=0)
    purchase = buy_and_finish(shopper, "k1")
    assert purchase.run.result["reason"] == "out_of_stock"
    assert captured_charges(direct, purchase.customer_id) == []
    assert "sold out" in mail.outbox[0].body


def test_a_customer_without_an_email_address_gets_none_and_the_purchase_still_ends(
    make_user, product, short_window, direct
):
    user = make_user("noemail", "pw-noemail-1")
    purchase = buy_and_finish(user, "k1")
    assert purchase.run.result["state"] == "PURCHASE_CONFIRMED"
    assert mail.outbox == []


def test_a_mail_server_that_keeps_failing_costs_the_email_not_the_outcome(
    shopper, product, short_window, settings, monkeypatch
):
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_SECONDS": 0.01}

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    purchase = buy_and_finish(shopper, "k1")
    assert purchase.run.result["state"] == "PURCHASE_CONFIRMED"
    email_step = purchase.run.checkpoints.get(name="send_email")
    assert (email_step.status, email_step.attempts) == ("error", 8)


def advance_until(run_id: str, status: str, timeout: float = 60) -> None:
    """Advance the run whenever it is due until it has `status` (a worker's part, here)."""
    deadline = time.monotonic() + timeout
    while (run := WorkflowRun.objects.get(pk=run_id)).status != status:
        assert not run.is_finished, f"{run_id} ended {run.status}: {run.error}"
        assert time.monotonic() < deadline, f"{run_id} not {status} within {timeout}s"
        if run.wake_at is None or run.wake_at <= timezone.now():
            advance(run_id)
        time.sleep(0.02)


def test_an_unknown_outcome_is_asked_again_under_its_key_then_waits_for_an_operator_not_failed(
    shopper, product, short_window, settings, provider, direct, client
):
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_SECONDS": 0.05}
    settings.ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES = 0.03  # 1.8 s of connections refused
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    purchase = services.buy(shopper, "k1", "widget-001").purchase
    wait_past_the_window(purchase)
    with provider.proxied() as proxy:
        settings.STRIPE_API_BASE = proxy.api_base
        proxy.control.refuse(True)
        advance_until(purchase.run_id, RunStatus.BLOCKED)
        charge_step = StepCheckpoint.objects.get(run_id=purchase.run_id, name="charge")
        assert charge_step.unknown_attempts > 3, "unknown outcomes do not use up its 3 attempts"
        run = WorkflowRun.objects.get(pk=purchase.run_id)
        assert run.blocked_kind == "outcome_unknown" and "charge" in run.blocked_reason
        status = services.purchase_status(purchase, refresh=True).as_json()
        assert status["status"] == "pending" and status["waiting_on_provider"] is True
        client.force_login(shopper)
        page = client.get(reverse("purchase-status", args=["k1"])).json()["html"]
        assert "Charging your Visa" in page and "data-waiting-on-provider" in page
        assert "charged at most once" in page
        assert captured_charges(direct, purchase.customer_id) == []
        # The provider is back; an operator resumes the purchase, which asks again, same key.
        proxy.control.refuse(False)
        call_command("workflows", "resume", purchase.run_id)
        finish([purchase.run_id])
        report = proxy.control.report()
    purchase.refresh_from_db()
    assert purchase.run.result["state"] == "PURCHASE_CONFIRMED"
    assert len(captured_charges(direct, purchase.customer_id)) == 1
    assert report["charge_requests"] == 1, "refused connections never reached the provider"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("9.99", "usd", 999), ("0.50", "EUR", 50), ("1.005", "usd", 101), ("500", "jpy", 500)],
)
def test_prices_are_charged_in_the_currencys_minor_units(amount, currency, minor):
    assert payments.minor_units(Decimal(amount), currency) == minor
