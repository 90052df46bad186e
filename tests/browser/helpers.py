"""What the browser tests share besides fixtures: sign-in, screenshots, the page's status."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from devtools.processes import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "pw-shopper-123"
# Generous: on a loaded 2-core machine django-q2 may take seconds to start and run a step.
WAIT_MS = 60_000
PURCHASE_URL = re.compile(r"/purchases/[A-Za-z0-9_-]+/$")


def sign_in(tab: Page, site: str, username: str = "shopper", password: str = PASSWORD) -> None:
    """Sign in through the form and wait for the catalog."""
    tab.goto(f"{site}/accounts/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{site}/")


def buy_widget(tab: Page) -> None:
    """Click the catalog's Buy now for the Widget and wait for the purchase page."""
    tab.get_by_role("button", name="Buy now Widget").click()
    tab.wait_for_url(PURCHASE_URL)


def status_of(tab: Page) -> Locator:
    """The purchase page's status panel; its data-state is PENDING, CONFIRMED, ..."""
    return tab.locator("#purchase-status [data-state]")


def screenshot(tab: Page, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
