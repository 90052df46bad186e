"""The Content-Security-Policy in Chromium: the shop's countdown, the admin, the browsable API and
Swagger UI work under it, and no page breaks a directive (issue 29, item 7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

from oneclick_project.csp import HEADER
from tests.browser.helpers import PASSWORD, buy_widget, sign_in, status_of

pytestmark = pytest.mark.browser


def watch_violations(tab: Page) -> list[str]:
    """The CSP violations Chromium reports on `tab` from now on (its console says each)."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.append(message.text)

    tab.on("console", on_console)
    return seen


def test_the_countdown_runs_under_the_policy(
    product: Any, engine: None, page: Page, site: str, cancel_window: Callable[[float], None]
) -> None:
    violations = watch_violations(page)
    cancel_window(5)
    answer = page.goto(f"{site}/")
    assert answer is not None and "script-src 'self';" in answer.headers[HEADER.lower()]
    buy_widget(page)
    seconds = page.locator("[data-countdown] [data-seconds]")
    expect(seconds).to_be_visible()  # shown by the script: hidden without it
    first = seconds.inner_text()
    expect(seconds).not_to_have_text(first)  # it counts down
    expect(status_of(page)).to_have_attribute("data-state", "CONFIRMED")  # polled in place
    page.goto(f"{site}/purchases/no-such-key/")  # the error page's inline style, by its hash
    assert violations == []


def test_the_admin_and_the_api_pages_work_under_the_policy(
    product: Any,
    site: str,
    new_context: Callable[..., BrowserContext],
    django_user_model: Any,
) -> None:
    django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    tab = new_context().new_page()
    violations = watch_violations(tab)
    tab.goto(f"{site}/admin/login/")
    tab.get_by_label("Username").fill("boss")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"{site}/admin/")
    tab.goto(f"{site}/admin/purchases/product/{product.pk}/change/")
    expect(tab.get_by_label("Add to stock")).to_be_visible()
    tab.goto(f"{site}/admin/purchases/product/")
    # The change list's script works: "select all" ticks every row.
    tab.locator("#action-toggle").check()
    expect(tab.locator("input.action-select").first).to_be_checked()
    tab.goto(f"{site}/api/")
    expect(tab.locator(".response-info")).to_contain_text("HTTP 200 OK")
    tab.goto(f"{site}/api/docs/")
    expect(tab.locator(".swagger-ui .title").first).to_contain_text("oneclick API")
    assert violations == []


def test_the_shop_is_signed_into_under_the_policy(
    site: str, new_context: Callable[..., BrowserContext], shopper: Any
) -> None:
    tab = new_context().new_page()
    violations = watch_violations(tab)
    sign_in(tab, site)
    assert violations == []
