"""Every row of DESIGN.md §5, with the workflow advanced in the test process."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from durable.models import WorkflowRun
from purchases.models import Order, Product, Purchase
from purchases.services import run_id_for
from tests.purchases.conftest import wait_past_the_window
from tests.support.inline import finish

# Transactional, so that `on_commit` runs as in production: a purchase is started eagerly by the
# request that accepts it.
pytestmark = pytest.mark.django_db(transaction=True)


def buy(client: APIClient, key: str, item_id: object = "widget-001"):
    return client.post(f"/api/buy/{key}", {"item_id": item_id}, format="json")


def complete(user, *keys: str) -> None:
    finish([run_id_for(user.pk, key) for key in keys])


def test_the_suite_runs_under_the_production_defaults(api, settings):
    assert settings.ONECLICK_EAGER_START is True
    assert settings.DURABLE["EAGER_GRACE_SECONDS"] == 2.0


def test_buy_accepts_a_new_purchase_with_its_deadline(api, alice, product, short_window, eager):
    before = dt.datetime.now(dt.UTC)
    response = buy(api, "k1")
    after = dt.datetime.now(dt.UTC)
    assert response.status_code == 202
    body = response.json()
    assert body["key"] == "k1" and body["status"] == "pending" and body["item_id"] == "widget-001"
    cancel_until = dt.datetime.fromisoformat(body["cancel_until"])
    assert body["cancel_until"].endswith("Z")
    window = dt.timedelta(seconds=short_window)
    assert before + window <= cancel_until <= after + window
    # Eagerly, the request itself parked the run at its window (its on_commit ran); otherwise
    # the run waits for a worker.
    run = WorkflowRun.objects.get(pk=run_id_for(alice.pk, "k1"))
    expected = ("waiting", "cancel", cancel_until) if eager else ("pending", "", None)
    assert (run.status, run.waiting_signal, run.wake_at) == expected


def test_with_no_cancel_window_the_buying_request_confirms_the_purchase_in_its_commit(
    api, alice, product, settings
):
    """The eager start runs the workflow in the buy's own transaction, after the purchase row
    it checks out (started before it, the checkout would find no purchase and fail), and the
    charge, a plain step, right after its commit."""
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0
    response = buy(api, "k0")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "done" and body["result"]["state"] == "PURCHASE_CONFIRMED"
    order = Order.objects.get(purchase__key="k0")
    assert body["result"]["order_id"] == order.order_number
    product.refresh_from_db()
    assert product.stock == 9


def test_the_same_key_again_answers_200_with_the_current_status(
    api, alice, product, short_window, eager
):
    first = buy(api, "k1").json()
    again = buy(api, "k1")
    assert again.status_code == 200 and again.json() == first
    complete(alice, "k1")
    done = buy(api, "k1")
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert Purchase.objects.count() == 1 and Order.objects.count() == 1


def test_the_same_key_with_another_item_is_a_conflict(api, product):
    Product.objects.create(item_id="gadget-002", name="Gadget", price="2.00", stock=3)
    buy(api, "k1")
    response = buy(api, "k1", "gadget-002")
    assert response.status_code == 409
    assert response.json()["field"] == "item_id"
    assert Purchase.objects.get().product.item_id == "widget-001"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item_id": "no-such-item"}, "item_id"),
        ({}, "item_id"),
        ({"item_id": 42}, "item_id"),
        ({"item_id": ["widget-001"]}, "item_id"),
        ({"item_id": None}, "item_id"),
        ({"item_id": ""}, "item_id"),
    ],
)
def test_unknown_missing_or_mistyped_item_is_a_400_naming_the_field(api, product, body, field):
    response = api.post("/api/buy/k1", body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Purchase.objects.count() == 0


def test_an_inactive_product_cannot_be_bought(api, product):
    Product.objects.filter(pk=product.pk).update(active=False)
    response = buy(api, "k1")
    assert response.status_code == 400 and response.json()["field"] == "item_id"
    assert Purchase.objects.count() == 0


@pytest.mark.parametrize("key", ["bad key", "a" * 65, "k%21", "k.1", "ключ", "%20"])
def test_a_bad_key_is_a_400_on_every_endpoint(api, product, key):
    for response in (
        buy(api, key),
        api.post(f"/api/cancel/{key}"),
        api.get(f"/api/status/{key}"),
    ):
        assert response.status_code == 400, (key, response.content)
        assert response.json()["field"] == "key"


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        ("not json", "application/json"),
        ('["widget-001"]', "application/json"),
        ('"widget-001"', "application/json"),
        ("item_id=widget-001", "text/plain"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_naming_the_field(
    api, product, payload, content_type
):
    response = api.generic("POST", "/api/buy/k1", payload, content_type=content_type)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["field"] == "item_id" and response.json()["detail"]
    assert Purchase.objects.count() == 0


def test_an_oversized_body_is_a_400(api, product):
    huge = '{"item_id": "widget-001", "pad": "' + "x" * 200_000 + '"}'
    response = api.generic("POST", "/api/buy/k1", huge, content_type="application/json")
    assert response.status_code == 400
    assert "larger than" in response.json()["detail"]
    assert response.json()["field"] == "item_id"
    assert Purchase.objects.count() == 0


def test_status_pending_then_confirmed_with_order(api, alice, product, short_window, eager):
    buy(api, "k1")
    pending = api.get("/api/status/k1")
    assert pending.status_code == 200
    assert pending.json()["status"] == "pending" and "cancel_until" in pending.json()
    complete(alice, "k1")
    done = api.get("/api/status/k1").json()
    order = Order.objects.get()
    assert done == {
        "key": "k1",
        "status": "done",
        "result": {
            "state": "PURCHASE_CONFIRMED",
            "item_id": "widget-001",
            "order_id": order.order_number,
        },
    }
    assert order.price_paid == product.price
    assert Product.objects.get(pk=product.pk).stock == product.stock - 1


def test_confirmation_never_happens_before_the_deadline(api, alice, product, short_window):
    buy(api, "k1")
    complete(alice, "k1")
    purchase = Purchase.objects.get()
    assert purchase.order.created_at >= purchase.cancel_until


def test_cancel_inside_the_window_ends_cancelled_without_an_order(
    api, alice, product, settings, eager
):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60  # the cancel is in time however slow the day
    buy(api, "k1")
    response = api.post("/api/cancel/k1")
    assert response.status_code == 200
    assert response.json()["cancelled"] is True and response.json()["key"] == "k1"
    again = api.post("/api/cancel/k1")
    assert again.status_code == 200 and again.json()["cancelled"] is True
    complete(alice, "k1")
    assert api.get("/api/status/k1").json()["result"] == {
        "state": "PURCHASE_CANCELLED",
        "item_id": "widget-001",
    }
    assert api.post("/api/cancel/k1").status_code == 200, "still 200 after it ended"
    assert Order.objects.count() == 0
    assert Product.objects.get(pk=product.pk).stock == product.stock
    assert Purchase.objects.get().cancelled_at is not None


def test_cancel_after_the_window_is_a_409_with_the_decided_state(
    api, alice, product, short_window, eager
):
    buy(api, "k1")
    wait_past_the_window(Purchase.objects.get())
    response = api.post("/api/cancel/k1")
    assert response.status_code == 409
    assert response.json()["cancelled"] is False and response.json()["key"] == "k1"
    complete(alice, "k1")
    late = api.post("/api/cancel/k1")
    assert late.status_code == 409
    assert late.json()["result"]["state"] == "PURCHASE_CONFIRMED"
    assert Order.objects.count() == 1


def test_unknown_key_is_404_on_status_and_cancel(api):
    status = api.get("/api/status/nope")
    assert status.status_code == 404 and status.json()["status"] == "not_found"
    cancel = api.post("/api/cancel/nope")
    assert cancel.status_code == 404 and cancel.json()["status"] == "not_found"


def test_out_of_stock_at_checkout_fails_with_a_reason_and_no_order(
    api, alice, product, short_window, eager
):
    Product.objects.filter(pk=product.pk).update(stock=0)
    assert buy(api, "k1").status_code == 202
    complete(alice, "k1")
    result = api.get("/api/status/k1").json()["result"]
    assert result == {"state": "PURCHASE_FAILED", "item_id": "widget-001", "reason": "out_of_stock"}
    assert Order.objects.count() == 0
    assert Product.objects.get(pk=product.pk).stock == 0


def test_list_shows_own_purchases_newest_first_paginated(api, api_bob, product, settings):
    settings.ONECLICK_MAX_PENDING_PURCHASES = 0  # 25 purchases left pending: no worker runs here
    for n in range(25):
        buy(api, f"k{n}")
    buy(api_bob, "bobs")
    page = api.get("/api/purchases/").json()
    assert page["count"] == 25 and len(page["results"]) == 20 and page["next"]
    assert page["results"][0]["key"] == "k24"
    second = api.get("/api/purchases/?page=2").json()
    assert [item["key"] for item in second["results"]] == [f"k{n}" for n in range(4, -1, -1)]
    assert all(item["key"] != "bobs" for item in page["results"] + second["results"])


def test_keys_are_scoped_to_their_user(api, api_bob, alice, bob, product):
    assert buy(api, "shared").status_code == 202
    assert buy(api_bob, "shared").status_code == 202, "bob's key is his own"
    assert Purchase.objects.filter(key="shared").count() == 2
    bob_only = buy(api_bob, "bob-only")
    assert bob_only.status_code == 202
    assert api.get("/api/status/bob-only").status_code == 404
    refused = api.post("/api/cancel/bob-only")
    assert refused.status_code == 404 and refused.json()["status"] == "not_found"
    assert api_bob.get("/api/status/bob-only").json()["status"] == "pending"


def test_anonymous_requests_are_refused_with_json(product):
    client = APIClient()
    for response in (
        client.post("/api/buy/k1", {"item_id": "widget-001"}, format="json"),
        client.post("/api/cancel/k1"),
        client.get("/api/status/k1"),
        client.get("/api/purchases/"),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
        assert "detail" in response.json()
    assert Purchase.objects.count() == 0


def test_token_and_basic_authentication_work(alice, product):
    token = Token.objects.create(user=alice)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert buy(by_token, "tok").status_code == 202
    basic = APIClient()
    credentials = base64.b64encode(b"alice:pw-alice-123").decode()
    basic.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    by_basic = basic.get("/api/status/tok")
    assert by_basic.status_code == 200 and by_basic.json()["key"] == "tok"
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"alice:nope").decode())
    assert wrong.get("/api/status/tok").status_code == 401
    assert "detail" in wrong.get("/api/status/tok").json()


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing/here")
    assert response.status_code == 404 and response.json()["status"] == "not_found"


def test_openapi_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/buy/{key}", "/api/cancel/{key}", "/api/status/{key}", "/api/purchases/"} <= set(
        paths
    )
    docs = api.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    # Every asset the page loads is served by the app itself: no CDN, which a
    # machine without internet (or a strict CSP) could not reach.  A substring
    # check would be flaky: the page embeds a random CSRF token.  The page's own
    # script comes from the docs view (no inline script under the CSP).
    assets = re.findall(r'(?:src|href)="([^"]*)"', docs.content.decode())
    own = ("/static/", "/api/docs/?script=")
    assert assets and all(url.startswith(own) for url in assets), assets
    assert any(url.startswith("/static/drf_spectacular_sidecar/") for url in assets), assets


def test_an_unexpected_error_is_a_generic_json_500(api, product, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("purchases.services.buy", explode)
    client = api
    client.raise_request_exception = False
    response = buy(client, "k1")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "code": "internal_error"}
    assert b"secret internal detail" not in response.content


def test_seed_demo_is_idempotent_and_guards_the_demo_user(settings):
    from django.core.management import call_command

    settings.DEBUG = False
    call_command("seed_demo")
    assert Product.objects.filter(item_id="widget-001").exists()
    assert not get_user_model().objects.filter(username="demo").exists()
    call_command("seed_demo", "--force")
    call_command("seed_demo", "--force")
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert Product.objects.filter(item_id="widget-001").count() == 1
