"""The browsable API: a root linking every endpoint, a Buy form with the active products, a
Cancel button, and a schema describing the same request bodies."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import yaml
from django.test import Client

from purchases.models import Product, Purchase

pytestmark = pytest.mark.django_db

HTML = {"HTTP_ACCEPT": "text/html"}


@pytest.fixture
def browser_client(alice) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_the_api_root_links_every_endpoint(api):
    root = api.get("/api/")
    assert root.status_code == 200
    links = root.json()
    assert links["purchases"] == "http://testserver/api/purchases/"
    assert re.fullmatch(r"http://testserver/api/buy/[A-Za-z0-9_-]{1,64}", links["buy"])
    assert links["cancel"] == "http://testserver/api/cancel/{key}"
    assert links["status"] == "http://testserver/api/status/{key}"
    assert links["payment_method"] == "http://testserver/api/payment-method"
    assert links["schema"] == "http://testserver/api/schema/"
    assert links["docs"] == "http://testserver/api/docs/"
    assert api.get("/api/").json()["buy"] != links["buy"], "a fresh key per visit"


def test_the_buy_page_offers_the_active_products_and_buys_from_the_form(browser_client, product):
    Product.objects.create(item_id="old-1", name="Retired", price=Decimal("1"), active=False)
    page = browser_client.get("/api/buy/form-1", **HTML)
    html = page.content.decode()
    assert page.status_code == 405 and "text/html" in page["Content-Type"]
    select = re.search(r'<select[^>]*name="item_id".*?</select>', html, re.S)
    assert select, "an item_id select in the form"
    assert 'value="widget-001"' in select.group(0) and "old-1" not in select.group(0)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    bought = browser_client.post(
        "/api/buy/form-1", {"item_id": "widget-001", "csrfmiddlewaretoken": token}, **HTML
    )
    assert bought.status_code == 202
    assert Purchase.objects.get(key="form-1").product == product


def test_the_cancel_page_is_a_post_button(api, browser_client, product):
    api.post("/api/buy/c-1", {"item_id": "widget-001"}, format="json")
    html = browser_client.get("/api/cancel/c-1", **HTML).content.decode()
    form = re.search(r'<form action="/api/cancel/c-1"[^>]*method="POST".*?</form>', html, re.S)
    assert form and re.search(r"<button[^>]*>\s*POST\s*</button>", form.group(0)), html[:3000]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(0)).group(1)
    cancelled = browser_client.post("/api/cancel/c-1", {"csrfmiddlewaretoken": token}, **HTML)
    assert cancelled.status_code == 200


def test_the_schema_describes_the_bodies_the_forms_send(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)
    buy = schema["paths"]["/api/buy/{key}"]["post"]["requestBody"]["content"]
    assert set(buy) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    for body in buy.values():
        assert body["schema"] == {"$ref": "#/components/schemas/BuyRequest"}
    item = schema["components"]["schemas"]["BuyRequest"]["properties"]["item_id"]
    assert item["type"] == "string"
    assert "requestBody" not in schema["paths"]["/api/cancel/{key}"]["post"]
    assert "/api/" in schema["paths"]


def test_a_large_multipart_body_is_refused_before_it_is_read(api, product):
    big = b"x" * (64 * 1024 + 1)
    from django.core.files.uploadedfile import SimpleUploadedFile

    answer = api.post(
        "/api/buy/big-1",
        {"item_id": "widget-001", "f": SimpleUploadedFile("f.bin", big)},
        format="multipart",
    )
    assert answer.status_code == 400
    assert not Purchase.objects.filter(key="big-1").exists()
