"""The account page: the saved card, Stripe's test cards to choose from, and the buy that sends
a customer without a card there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from purchases.keys import new_key
from purchases.models import Purchase, SavedCard

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dave(make_user):
    return make_user("dave", "pw-dave-123", card=False)


@pytest.fixture
def dave_client(client, dave):
    client.force_login(dave)
    return client


def test_the_account_page_offers_the_test_cards_and_saves_the_chosen_one(dave_client, dave):
    page = dave_client.get(reverse("account")).content.decode()
    assert "data-no-card" in page
    assert 'value="pm_card_visa"' in page and 'value="pm_card_chargeCustomerFail"' in page
    response = dave_client.post(reverse("account-card"), {"payment_method": "pm_card_visa"})
    assert response.status_code == 302
    page = dave_client.get(reverse("account")).content.decode()
    assert "Visa \u2022\u2022\u2022\u2022 4242" in page and "data-saved-card" in page
    assert SavedCard.objects.get(user=dave).last4 == "4242"


def test_a_card_the_provider_refuses_is_a_message_not_an_error(dave_client, dave):
    response = dave_client.post(
        reverse("account-card"), {"payment_method": "pm_card_visa_chargeDeclined"}, follow=True
    )
    assert response.status_code == 200
    assert "That card was refused" in response.content.decode()
    assert not SavedCard.objects.filter(user=dave).exists()


def test_a_provider_down_is_a_message_not_an_error(dave_client, settings, provider):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    response = dave_client.post(
        reverse("account-card"), {"payment_method": "pm_card_visa"}, follow=True
    )
    assert response.status_code == 200
    assert "payment provider is unavailable" in response.content.decode()


def test_live_mode_offers_no_test_cards(dave_client, settings):
    settings.STRIPE_API_KEY, settings.STRIPE_API_BASE = "sk_live_x", ""
    page = dave_client.get(reverse("account")).content.decode()
    assert "pm_card_visa" not in page


def test_a_buy_without_a_card_sends_the_customer_to_the_account_page(dave_client, dave, product):
    catalog = dave_client.get(reverse("catalog")).content.decode()
    assert reverse("account") in catalog and "data-no-card" in catalog
    response = dave_client.post(reverse("buy"), {"key": new_key(), "item_id": "widget-001"})
    assert response.status_code == 302 and response["Location"] == reverse("account")
    page = dave_client.get(response["Location"]).content.decode()
    assert "Save a card on your account page first" in page
    assert not Purchase.objects.filter(user=dave).exists()
