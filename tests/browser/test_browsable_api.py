"""The browsable API in Chromium: from the API root, buy through the Buy form and cancel with
the Cancel page's POST button, signed in as a customer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devtools.processes import wait_until
from purchases import selectors
from purchases.models import Purchase
from tests.browser.helpers import screenshot

pytestmark = pytest.mark.browser


def test_buy_and_cancel_through_the_browsable_api(
    product: Any, engine: None, page: Page, site: str, cancel_window: Callable[[float], None]
) -> None:
    cancel_window(600)  # the cancel is accepted however slow the machine is today
    page.goto(f"{site}/api/")
    page.locator('a[href*="/api/buy/"]').click()
    page.wait_for_url(re.compile(r"/api/buy/[A-Za-z0-9_-]+$"))
    key = page.url.rsplit("/", 1)[1]
    form = page.locator("#post-object-form")
    form.locator('select[name="item_id"]').select_option("widget-001")
    screenshot(page, "api-buy-form")
    form.get_by_role("button", name="POST").click()
    expect(page.locator(".response-info")).to_contain_text("HTTP 202 Accepted")
    expect(page.locator(".response-info")).to_contain_text('"status": "pending"')

    page.goto(f"{site}/api/cancel/{key}")
    page.locator("#post-object-form").get_by_role("button", name="POST").click()
    expect(page.locator(".response-info")).to_contain_text("HTTP 200 OK")
    expect(page.locator(".response-info")).to_contain_text('"cancelled": true')
    screenshot(page, "api-cancelled")

    purchase = Purchase.objects.get(key=key)
    assert purchase.user.username == "shopper"

    def cancelled() -> bool:
        return selectors.purchase_status(Purchase.objects.get(key=key)).state == "CANCELLED"

    wait_until(cancelled, 120, 0.2, message="the accepted cancel did not end the purchase")
