"""The storefront pages through Django's test client: sign-in, catalog, buy, cancel, orders."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from durable.models import WorkflowSignal
from durable.ops.recovery import drain
from purchases import services
from purchases.models import Order, Product, Purchase
from tests.purchases.conftest import wait_past_the_window
from tests.purchases.pages import buy_form_fields, buy_from_catalog, messages_of

# Transactional, so that `on_commit` runs as in production: a purchase is started eagerly by the
# request that accepts it.
pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    # With DEBUG off the project serves hashed names from collectstatic's manifest; the test
    # client renders pages without running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def client_of(alice):
    def signed_in(user=alice) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return signed_in


@pytest.fixture
def window(settings):
    def set_window(seconds: float) -> None:
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = seconds

    return set_window


# --- sign in and out ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", "/purchases/"),
        ("get", "/purchases/some-key/"),
        ("get", "/purchases/some-key/status"),
        ("post", "/buy/"),
        ("post", "/purchases/some-key/cancel"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(method: str, path: str, product) -> None:
    response = getattr(Client(), method)(path)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={path}"
    assert not Purchase.objects.exists()


def test_sign_in_then_sign_out(alice) -> None:
    client = Client()
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in page.content.decode()

    wrong = client.post(LOGIN, {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200
    assert "enter a correct username and password" in wrong.content.decode()

    signed_in = client.post(LOGIN, {"username": "alice", "password": "pw-alice-123"})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == reverse("catalog")

    assert client.get(reverse("logout")).status_code == 405  # signing out takes a POST
    signed_out = client.post(reverse("logout"), follow=True)
    assert signed_out.redirect_chain[0] == (LOGIN, 302)
    assert "You have signed out." in messages_of(signed_out)
    assert client.get("/").status_code == 302


def test_sign_in_returns_to_the_page_asked_for(alice) -> None:
    response = Client().post(
        LOGIN, {"username": "alice", "password": "pw-alice-123", "next": "/purchases/"}
    )
    assert response["Location"] == "/purchases/"


@pytest.mark.parametrize("debug", [True, False])
def test_demo_account_is_hinted_only_in_debug(settings, debug: bool) -> None:
    settings.DEBUG = debug
    html = Client().get(LOGIN).content.decode()
    assert ('id="demo-hint"' in html) is debug


# --- catalog and buying ---------------------------------------------------------------------------


def test_catalog_lists_active_products_each_with_its_own_key(client_of, product) -> None:
    Product.objects.create(item_id="gone-009", name="Gone", price="1.00", stock=3, active=False)
    Product.objects.create(item_id="sold-010", name="Sold Out Thing", price="2.00", stock=0)
    response = client_of().get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Widget" in html and "9.99" in html and "10 in stock" in html
    assert "Gone" not in html
    assert "Sold out" in html
    assert "csrfmiddlewaretoken" in html
    widget, sold = buy_form_fields(html, "widget-001"), buy_form_fields(html, "sold-010")
    assert widget["key"] != sold["key"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", widget["key"])
    # A new page view gets new keys.
    assert buy_form_fields(client_of().get("/").content.decode(), "widget-001") != widget
    # The browser may keep the page for "back", but no shared cache may.
    cache_control = response["Cache-Control"]
    assert "private" in cache_control and "no-store" not in cache_control


def test_buy_form_makes_a_purchase_and_shows_it(client_of, product, window) -> None:
    window(60)
    response, key = buy_from_catalog(client_of())
    assert response.redirect_chain == [(reverse("purchase", args=[key]), 302)]
    purchase = Purchase.objects.get()
    assert (purchase.key, purchase.product, purchase.user.username) == (key, product, "alice")
    html = response.content.decode()
    assert 'data-state="PENDING"' in html
    assert "data-countdown" in html
    assert reverse("purchase-cancel", args=[key]) in html
    assert messages_of(response) == []


def test_the_same_form_twice_makes_one_purchase(client_of, product, window) -> None:
    window(60)
    client = client_of()
    fields = buy_form_fields(client.get("/").content.decode(), "widget-001")
    first = client.post(reverse("buy"), fields)
    again = client.post(reverse("buy"), fields, follow=True)
    assert Purchase.objects.count() == 1
    assert (
        first["Location"] == again.redirect_chain[0][0] == reverse("purchase", args=[fields["key"]])
    )
    assert any("already placed this order" in message for message in messages_of(again))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "k-unknown-1", "item_id": "no-such-item"}, "not available"),
        ({"key": "bad key!", "item_id": "widget-001"}, "expired"),
        ({"key": "k-missing-item"}, "did not work"),
        ({"key": "x" * 65, "item_id": "widget-001"}, "did not work"),
        ({}, "did not work"),
    ],
)
def test_bad_buy_input_is_a_message_not_an_error(
    client_of, product, fields: dict[str, str], message: str
) -> None:
    response = client_of().post(reverse("buy"), fields, follow=True)
    assert response.redirect_chain == [(reverse("catalog"), 302)]
    assert any(message in text for text in messages_of(response))
    assert not Purchase.objects.exists()


def test_a_key_reused_for_another_item_shows_the_first_purchase(client_of, product) -> None:
    Product.objects.create(item_id="gadget-002", name="Gadget", price="24.50", stock=5)
    client = client_of()
    client.post(reverse("buy"), {"key": "k-reused", "item_id": "widget-001"})
    response = client.post(
        reverse("buy"), {"key": "k-reused", "item_id": "gadget-002"}, follow=True
    )
    assert response.redirect_chain == [(reverse("purchase", args=["k-reused"]), 302)]
    assert Purchase.objects.get().product == product


def test_buying_needs_the_csrf_token(alice, product) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("buy"), {"key": "k-csrf", "item_id": "widget-001"})
    assert response.status_code == 403
    assert "nothing was done" in response.content.decode()
    assert not Purchase.objects.exists()


# --- the purchase page: status and cancel ---------------------------------------------------------


def test_cancel_in_the_window_cancels(client_of, product, window) -> None:
    window(60)
    client = client_of()
    _, key = buy_from_catalog(client)
    response = client.post(reverse("purchase-cancel", args=[key]), follow=True)
    assert response.redirect_chain == [(reverse("purchase", args=[key]), 302)]
    assert "Your purchase is cancelled. Nothing will be ordered." in messages_of(response)

    drain(Purchase.objects.get().run_id)
    html = client.get(reverse("purchase", args=[key])).content.decode()
    assert 'data-state="CANCELLED"' in html
    assert "Cancel purchase" not in html
    assert not Order.objects.exists()


def test_late_cancel_says_too_late_and_shows_the_order(client_of, product, window, eager) -> None:
    window(0)
    client = client_of()
    _, key = buy_from_catalog(client)
    if not eager:  # the eager start confirmed it already; a worker's turn comes now
        drain(Purchase.objects.get().run_id)
    order = Order.objects.get()

    response = client.post(reverse("purchase-cancel", args=[key]), follow=True)
    assert response.status_code == 200
    assert "Too late, your order is confirmed." in messages_of(response)
    html = response.content.decode()
    assert 'data-state="CONFIRMED"' in html
    assert order.order_number in html
    assert Order.objects.count() == 1


def test_late_cancel_before_the_worker_ran_says_it_is_being_confirmed(
    client_of, product, window, eager
) -> None:
    # Parked at its window (eagerly, or not yet started by a worker); the window closes before
    # the poller's worker confirms it.
    window(0.3)
    client = client_of()
    _, key = buy_from_catalog(client)
    wait_past_the_window(Purchase.objects.get())
    response = client.post(reverse("purchase-cancel", args=[key]), follow=True)
    assert any(text.startswith("Too late") for text in messages_of(response))
    html = response.content.decode()
    assert 'data-state="PENDING"' in html
    assert "The cancel window has closed" in html
    assert "Cancel purchase" not in html
    drain(Purchase.objects.get().run_id)
    assert Order.objects.count() == 1


def test_status_endpoint_follows_the_purchase(client_of, product, window) -> None:
    window(0.3)
    client = client_of()
    _, key = buy_from_catalog(client)
    url = reverse("purchase-status", args=[key])
    pending = client.get(url)
    assert pending["Content-Type"] == "application/json"
    assert "no-cache" in pending["Cache-Control"]
    assert pending.json()["state"] == "PENDING"

    wait_past_the_window(Purchase.objects.get())
    drain(Purchase.objects.get().run_id)
    done = client.get(url).json()
    assert done["state"] == "CONFIRMED"
    assert 'data-state="CONFIRMED"' in done["html"]
    assert Order.objects.get().order_number in done["html"]


@pytest.mark.parametrize("key", ["no-such-key", "x" * 65, "bad%20key", "%E2%9C%93"])
def test_unknown_or_malformed_keys_are_a_404_page(client_of, key: str) -> None:
    client = client_of()
    for response in (
        client.get(f"/purchases/{key}/"),
        client.get(f"/purchases/{key}/status"),
        client.post(f"/purchases/{key}/cancel"),
    ):
        assert response.status_code == 404
        assert "Page not found" in response.content.decode()


def test_another_users_purchase_is_a_404(client_of, product, window) -> None:
    window(60)
    _, key = buy_from_catalog(client_of())
    bob = client_of(get_user_model().objects.create_user("bob", password="pw-bob-123"))
    assert bob.get(reverse("purchase", args=[key])).status_code == 404
    assert bob.get(reverse("purchase-status", args=[key])).status_code == 404
    assert bob.post(reverse("purchase-cancel", args=[key])).status_code == 404
    assert not WorkflowSignal.objects.exists()  # bob's cancel never reached the workflow


# --- my orders ------------------------------------------------------------------------------------


def test_orders_lists_only_my_purchases_newest_first(
    client_of, alice, bob, product, window
) -> None:
    window(0)  # confirmed by their eager start
    services.buy(bob, "bobs-key", "widget-001")
    first = services.buy(alice, "alice-first", "widget-001").purchase
    window(60)
    services.buy(alice, "alice-second", "widget-001")
    order = Order.objects.get(purchase=first)

    response = client_of().get(reverse("orders"))
    html = response.content.decode()
    keys = re.findall(r'<tr data-key="([^"]+)"', html)
    assert keys == ["alice-second", "alice-first"]
    assert "bobs-key" not in html
    assert order.order_number in html
    assert "Confirmed" in html and "Pending" in html


def test_orders_page_survives_a_bad_page_number(client_of) -> None:
    response = client_of().get(reverse("orders"), {"page": "lots"})
    assert response.status_code == 200
    assert "No orders yet." in response.content.decode()
