"""The storefront in a real browser, with the real worker and poller finishing the purchases."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devtools.processes import wait_until
from purchases import services
from purchases.models import Order, Purchase
from tests.browser.helpers import PURCHASE_URL, WAIT_MS, buy_widget, screenshot, sign_in, status_of

pytestmark = pytest.mark.browser


def test_signed_out_visitor_is_sent_to_sign_in_and_back(
    new_context: Callable[..., BrowserContext], site: str, shopper: Any
) -> None:
    tab = new_context().new_page()
    tab.goto(f"{site}/purchases/")
    tab.wait_for_url(f"{site}/accounts/login/?next=/purchases/")
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(tab, "sign-in")

    tab.get_by_label("Username").fill("shopper")
    tab.get_by_label("Password").fill("wrong password")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("alert")).to_contain_text("correct username and password")
    screenshot(tab, "sign-in-error")

    sign_in(tab, site)
    tab.goto(f"{site}/purchases/")
    expect(tab.get_by_role("heading", name="My orders")).to_be_visible()
    tab.get_by_role("button", name=re.compile("Sign out")).click()
    tab.wait_for_url(f"{site}/accounts/login/")
    expect(tab.get_by_role("status")).to_contain_text("You have signed out.")
    tab.goto(f"{site}/")
    tab.wait_for_url(f"{site}/accounts/login/?next=/")


def test_buy_counts_down_then_confirms_without_a_reload(
    product: Any, engine: None, page: Page, site: str, cancel_window: Callable[[float], None]
) -> None:
    cancel_window(5)  # short, yet long enough to see the countdown on a slow machine
    expect(page.get_by_text("10 in stock")).to_be_visible()
    screenshot(page, "catalog")
    buy_widget(page)
    page.evaluate("window.sameDocument = true")

    seconds = page.locator("[data-countdown] [data-seconds]")
    expect(seconds).to_be_visible()
    first = seconds.inner_text()
    assert first in {"1", "2", "3", "4", "5"}
    expect(page.get_by_role("button", name="Cancel purchase")).to_be_visible()
    screenshot(page, "purchase-pending")
    expect(seconds).not_to_have_text(first)  # it counts down

    expect(status_of(page)).to_have_attribute("data-state", "CONFIRMED")
    order_number = page.locator("[data-order-number]").inner_text()
    assert order_number == Order.objects.get().order_number
    expect(status_of(page)).to_contain_text("Paid with your Visa \u2022\u2022\u2022\u2022 4242")
    assert page.evaluate("window.sameDocument") is True  # updated in place, not reloaded
    expect(page.get_by_role("button", name="Cancel purchase")).to_have_count(0)
    screenshot(page, "purchase-confirmed")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My orders").click()
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Widget")
    expect(row).to_contain_text("Confirmed")
    expect(row).to_contain_text(order_number)
    expect(row).to_contain_text("Paid")
    screenshot(page, "orders")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "orders-mobile")
    page.goto(f"{site}/")
    screenshot(page, "catalog-mobile")


def test_buy_then_cancel_ends_cancelled(
    product: Any, engine: None, page: Page, cancel_window: Callable[[float], None]
) -> None:
    cancel_window(60)  # ample time to click Cancel on a slow machine; the cancel ends it early
    buy_widget(page)
    page.get_by_role("button", name="Cancel purchase").click()
    expect(page.get_by_role("status")).to_contain_text("Your purchase is cancelled.")
    expect(status_of(page)).to_have_attribute("data-state", "CANCELLED")
    expect(page.get_by_role("button", name="Cancel purchase")).to_have_count(0)
    screenshot(page, "purchase-cancelled")
    assert not Order.objects.exists()
    assert Purchase.objects.get().cancelled_at is not None


def test_buy_and_cancel_work_without_javascript(
    product: Any,
    engine: None,
    signed_in: Callable[..., Page],
    cancel_window: Callable[[float], None],
) -> None:
    cancel_window(60)
    tab = signed_in(javascript=False)
    buy_widget(tab)
    expect(status_of(tab)).to_have_attribute("data-state", "PENDING")
    expect(tab.locator("[data-countdown]")).to_be_hidden()  # the countdown needs scripts
    expect(tab.get_by_text("Until then you can cancel it.")).to_be_visible()
    screenshot(tab, "purchase-pending-no-js")
    tab.get_by_role("button", name="Cancel purchase").click()
    expect(tab.get_by_role("status")).to_contain_text("Your purchase is cancelled.")

    def refreshed_to_cancelled() -> bool:
        if status_of(tab).get_attribute("data-state") == "CANCELLED":
            return True
        tab.get_by_role("link", name="Refresh the status").click()
        return False

    wait_until(refreshed_to_cancelled, timeout=WAIT_MS / 1000, interval=0.5)
    assert not Order.objects.exists()


def count_buy_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the buy service's calls as the live server's threads start and finish them."""
    calls = {"started": 0, "finished": 0}
    lock = threading.Lock()
    real_buy: Callable[..., Any] = services.buy

    def buy(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls["started"] += 1
        try:
            return real_buy(*args, **kwargs)
        finally:
            with lock:
                calls["finished"] += 1

    monkeypatch.setattr(services, "buy", buy)
    return calls


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_double_click_on_buy_makes_one_purchase(
    product: Any,
    signed_in: Callable[..., Page],
    cancel_window: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
    javascript: bool,
) -> None:
    cancel_window(60)  # still pending when the page shows it, however slow the day
    tab = signed_in(javascript=javascript)
    calls = count_buy_calls(monkeypatch)
    tab.get_by_role("button", name="Buy now Widget").dblclick()
    tab.wait_for_url(PURCHASE_URL)
    expect(status_of(tab)).to_have_attribute("data-state", "PENDING")
    wait_until(
        lambda: calls["finished"] >= 1 and calls["started"] == calls["finished"],
        timeout=WAIT_MS / 1000,
        message=f"buy requests still running: {calls}",
    )
    assert Purchase.objects.count() == 1
    assert tab.url.endswith(f"/purchases/{Purchase.objects.get().key}/")
    # With scripts the page drops the second submit; without, Chromium itself sends only one of
    # the two. The server's side of one key sent twice is the back-and-buy-again test below.
    assert calls["started"] == 1


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_back_and_buy_again_makes_one_purchase(
    product: Any,
    signed_in: Callable[..., Page],
    cancel_window: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
    javascript: bool,
) -> None:
    cancel_window(60)
    tab = signed_in(javascript=javascript)
    calls = count_buy_calls(monkeypatch)
    buy_widget(tab)
    first_url = tab.url
    tab.go_back()
    tab.get_by_role("button", name="Buy now Widget").click()
    tab.wait_for_url(first_url)
    expect(tab.get_by_role("status")).to_contain_text("You had already placed this order")
    assert calls == {"started": 2, "finished": 2}  # both reached the server, with one key
    assert Purchase.objects.count() == 1
    screenshot(tab, f"purchase-again-{'js' if javascript else 'no-js'}")


def test_unknown_purchase_is_a_not_found_page(page: Page, site: str) -> None:
    response = page.goto(f"{site}/purchases/no-such-key/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    screenshot(page, "not-found")
