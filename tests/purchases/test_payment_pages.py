"""What people see of a payment: the purchase page while the card is charged and after, the
orders page, the API's status, the admin, and /metrics."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.urls import reverse

from devtools.processes import wait_until
from purchases import services
from purchases.models import Purchase
from tests.ops.prometheus import scrape, value
from tests.purchases.conftest import wait_past_the_window
from tests.support.inline import finish

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "Visa \u2022\u2022\u2022\u2022 4242"


@pytest.fixture
def shop(client, alice):
    client.force_login(alice)
    return client


def finish_in_a_thread(run_id: str) -> threading.Thread:
    def work() -> None:
        try:
            finish([run_id], timeout=60)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_the_purchase_page_shows_the_card_being_charged_then_paid_with_the_order_number(
    shop, alice, product, short_window, provider, settings
):
    purchase = services.buy(alice, "k1", "widget-001").purchase
    wait_past_the_window(purchase)
    with provider.proxied() as proxy:
        settings.STRIPE_API_BASE = proxy.api_base
        proxy.control.hold(True)  # the provider charges, and holds its answer back
        worker = finish_in_a_thread(purchase.run_id)
        wait_until(lambda: proxy.control.report()["held"] >= 1, 30)
        charging = shop.get(reverse("purchase-status", args=["k1"])).json()
        api = services.purchase_status(Purchase.objects.get(pk=purchase.pk)).as_json()
        proxy.control.hold(False)
        worker.join(60)
    assert charging["state"] == "PENDING"
    assert f"Charging your {VISA}" in charging["html"] and "data-charging" in charging["html"]
    assert (api["status"], api["payment_state"]) == ("pending", "charging")
    assert "waiting_on_provider" not in api
    purchase.refresh_from_db()
    page = shop.get(reverse("purchase", args=["k1"])).content.decode()
    assert f"Paid with your {VISA}" in page
    assert purchase.order.order_number in page
    orders = shop.get(reverse("orders")).content.decode()
    assert 'data-payment="paid"' in orders and f'Paid <span class="muted">({VISA})' in orders


def test_a_declined_purchase_says_so_with_the_providers_message(
    shop, alice, give_card, product, short_window
):
    give_card(alice, "pm_card_chargeCustomerFail")
    purchase = services.buy(alice, "k1", "widget-001").purchase
    wait_past_the_window(purchase)
    finish([purchase.run_id])
    page = shop.get(reverse("purchase", args=["k1"])).content.decode()
    assert "data-declined" in page
    assert "Visa \u2022\u2022\u2022\u2022 0341 was declined: Your card was declined." in page
    assert reverse("account") in page
    body = shop.get("/api/status/k1").json()
    assert body["result"]["reason"] == "payment_declined"
    assert body["result"]["message"] == "Your card was declined."
    orders = shop.get(reverse("orders")).content.decode()
    assert 'data-payment="declined"' in orders


def test_the_admin_shows_the_payment_intent_the_decline_message_and_filters_by_payment(
    make_user, give_card, product, short_window
):
    paid_user, declined_user = make_user("payer"), make_user("decliner")
    give_card(declined_user, "pm_card_chargeCustomerFail")
    paid = services.buy(paid_user, "k1", "widget-001").purchase
    declined = services.buy(declined_user, "k2", "widget-001").purchase
    wait_past_the_window(declined)
    finish([paid.run_id, declined.run_id])
    paid.refresh_from_db()
    staff = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    admin = Client()
    admin.force_login(staff)
    page = admin.get(reverse("admin:purchases_purchase_change", args=[paid.pk])).content.decode()
    assert paid.payment_intent_id.startswith("pi_") and paid.payment_intent_id in page
    page = admin.get(reverse("admin:purchases_purchase_change", args=[declined.pk]))
    assert "Your card was declined." in page.content.decode()
    listing = admin.get(
        reverse("admin:purchases_purchase_changelist"), {"payment_state": "declined"}
    )
    html = listing.content.decode()
    assert "k2" in html and ">k1<" not in html


def test_metrics_count_payment_outcomes_and_the_providers_latency(
    make_user, give_card, product, short_window
):
    staff = get_user_model().objects.create_user("ops", password="pw-ops-123", is_staff=True)
    scraper = Client()
    scraper.force_login(staff)
    before = scrape(scraper)
    payer, decliner = make_user("payer"), make_user("decliner")
    give_card(decliner, "pm_card_chargeCustomerFail")
    runs = [
        services.buy(payer, "k1", "widget-001").purchase,
        services.buy(decliner, "k2", "widget-001").purchase,
    ]
    wait_past_the_window(runs[-1])
    finish([p.run_id for p in runs])
    after = scrape(scraper)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("oneclick_charge_outcomes_total", outcome="paid") == 1
    assert grew("oneclick_charge_outcomes_total", outcome="declined") == 1
    assert grew("oneclick_payment_provider_duration_seconds_count", call="charge") == 2
    # Saving the two cards and the decliner's second card.
    assert grew("oneclick_payment_provider_duration_seconds_count", call="attach_card") == 3
