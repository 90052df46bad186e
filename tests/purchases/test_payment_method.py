"""The saved card: `GET/PUT /api/payment-method` against a real local provider, and a buy
refused without a card."""

from __future__ import annotations

import pytest
import stripe
from rest_framework.test import APIClient

from devtools.stripe_provider import TEST_API_KEY
from durable.models import WorkflowRun
from purchases.models import Purchase, SavedCard

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def carol(make_user):
    return make_user("carol", "pw-carol-123", card=False)


@pytest.fixture
def api_carol(carol):
    client = APIClient()
    client.force_authenticate(carol)
    return client


def put_card(client: APIClient, payment_method: object):
    return client.put("/api/payment-method", {"payment_method": payment_method}, format="json")


def test_a_customer_without_a_card_has_none(api_carol):
    assert api_carol.get("/api/payment-method").json() == {"saved": False}


def test_saving_a_card_makes_the_provider_customer_once_and_attaches_the_card(
    api_carol, carol, provider
):
    first = put_card(api_carol, "pm_card_visa")
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["saved"], body["brand"], body["last4"]) == (True, "visa", "4242")
    assert body["payment_method"].startswith("pm_")
    card = SavedCard.objects.get(user=carol)
    second = put_card(api_carol, "pm_card_chargeCustomerFail")
    assert second.status_code == 200, second.content
    assert second.json()["last4"] == "0341"
    again = SavedCard.objects.get(user=carol)
    assert again.customer_id == card.customer_id, "one provider customer per user"
    direct = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": provider.api_base})
    customer = direct.v1.customers.retrieve(card.customer_id)
    assert customer.metadata["user_id"] == str(carol.pk)
    attached = direct.v1.payment_methods.retrieve(again.payment_method_id)
    assert attached.customer == card.customer_id
    assert api_carol.get("/api/payment-method").json()["last4"] == "0341"


@pytest.mark.parametrize(
    "payment_method", ["pm_nonsense", "", None, 42, "0{\u00e7\u00f7", "pm_card_visa/../x", "pm_"]
)
def test_a_bad_payment_method_is_a_400_naming_the_field(api_carol, carol, payment_method):
    response = put_card(api_carol, payment_method)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "payment_method"
    assert not SavedCard.objects.filter(user=carol).exists()


def test_a_body_that_is_not_json_names_the_field(api_carol):
    response = api_carol.put("/api/payment-method", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "payment_method"


def test_a_provider_that_cannot_be_reached_is_a_clear_503(api_carol, carol, settings, provider):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    response = put_card(api_carol, "pm_card_visa")
    assert response.status_code == 503, response.content
    assert "payment provider is unavailable" in response.json()["detail"]
    assert response["Retry-After"]
    assert not SavedCard.objects.filter(user=carol).exists()


def test_without_a_provider_configured_saving_a_card_is_a_503(api_carol, settings):
    settings.STRIPE_API_KEY = ""
    response = put_card(api_carol, "pm_card_visa")
    assert response.status_code == 503
    assert "STRIPE_API_KEY" in response.json()["detail"]


def test_a_buy_without_a_saved_card_is_refused_naming_payment_method_and_starts_nothing(
    api_carol, carol, product
):
    response = api_carol.post("/api/buy/k1", {"item_id": "widget-001"}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == "payment_method"
    assert "payment-method" in body["detail"]
    assert not Purchase.objects.filter(user=carol).exists()
    assert not WorkflowRun.objects.exists()


def test_a_buy_fixes_the_card_and_the_price_at_the_click(api, alice, product, settings):
    settings.ONECLICK_CURRENCY = "eur"
    response = api.post("/api/buy/k1", {"item_id": "widget-001"}, format="json")
    assert response.status_code == 202, response.content
    purchase = Purchase.objects.get(user=alice, key="k1")
    card = SavedCard.objects.get(user=alice)
    assert (purchase.customer_id, purchase.payment_method_id) == (
        card.customer_id,
        card.payment_method_id,
    )
    assert (purchase.card_label, purchase.currency, purchase.unit_price) == (
        "Visa \u2022\u2022\u2022\u2022 4242",
        "eur",
        product.price,
    )


def test_seed_demo_gives_demo_a_visa_once_and_again_when_the_provider_forgot_it(provider):
    from purchases.demo import seed_demo

    assert "demo card: saved (Visa \u2022\u2022\u2022\u2022 4242)" in seed_demo(force=True)
    card = SavedCard.objects.get(user__username="demo")
    assert any(line.startswith("demo card: exists") for line in seed_demo(force=True))
    assert SavedCard.objects.get(user__username="demo").customer_id == card.customer_id
    provider.flush()  # a local provider that lost its state (a fresh clone's first `make run`)
    assert "demo card: saved (Visa \u2022\u2022\u2022\u2022 4242)" in seed_demo(force=True)
    assert SavedCard.objects.get(user__username="demo").customer_id != card.customer_id


def test_seed_demo_without_a_provider_skips_the_card(settings):
    from purchases.demo import seed_demo

    settings.STRIPE_API_KEY = ""
    assert "demo card: skipped (no STRIPE_API_KEY)" in seed_demo(force=True)
