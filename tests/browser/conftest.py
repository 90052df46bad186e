"""Browser tests: Playwright driving Debian's Chromium against a live server and the real engine.

Without /usr/bin/chromium the tests are skipped with one line saying how to enable them, unless
ONECLICK_REQUIRE_BROWSER=1 (CI), which turns that into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.processes import poller, running, worker
from purchases import services
from tests.browser.helpers import PASSWORD, WAIT_MS, sign_in
from tests.support.environment import process_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    f"browser tests need Chromium at {CHROMIUM}: enable them with `apt-get install -y chromium`"
)


LIVE_SERVER_PORTS = range(8600, 8700)
_SET_ASIDE = pytest.StashKey[int]()


def _required() -> bool:
    return os.environ.get("ONECLICK_REQUIRE_BROWSER") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Without Chromium the browser tests are set aside and reported in one line (a skip per
    # test would print one line each); when they are required they run, and fail in `browser`.
    if CHROMIUM.exists() or _required():
        return
    browser_tests = [item for item in items if item.get_closest_marker("browser")]
    if browser_tests:
        items[:] = [item for item in items if not item.get_closest_marker("browser")]
        config.hook.pytest_deselected(items=browser_tests)
        config.stash[_SET_ASIDE] = len(browser_tests)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if count := config.stash.get(_SET_ASIDE, 0):
        terminalreporter.write_line(f"SKIPPED {count} {MISSING}", yellow=True, bold=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Debian Chromium for the module's tests (never a downloaded browser)."""
    if not CHROMIUM.exists():
        if _required():
            pytest.fail(f"{MISSING} (required: ONECLICK_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(MISSING)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an asyncio loop in this thread, so Django takes the
        # tests' ORM calls for calls from async code. They are plain synchronous calls.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live_server() -> Iterator[Any]:
    """pytest-django's live server, on the first free port of 8600-8699 (this suite's range)."""
    from pytest_django.live_server_helper import LiveServer

    errors = []
    for port in LIVE_SERVER_PORTS:
        try:
            server = LiveServer(f"localhost:{port}")
        except OSError as exc:  # taken, by another test run or server
            errors.append(exc)
            continue
        yield server
        server.stop()
        return
    raise RuntimeError(f"no free port in {LIVE_SERVER_PORTS}: {errors[-1]}")


@pytest.fixture
def site(settings: Any, live_server: Any) -> str:
    """The live server's URL, with settings that a browser on plain-HTTP localhost can use."""
    settings.STORAGES = {
        **settings.STORAGES,
        # No collectstatic in tests: the live server serves the source files.
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 3
    return live_server.url


@pytest.fixture
def cancel_window(settings: Any) -> Callable[[float], None]:
    """Set the cancel window of purchases started from now on (the live server is in-process)."""

    def set_window(seconds: float) -> None:
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = seconds

    return set_window


@pytest.fixture
def engine(browser: Browser, transactional_db: None) -> Iterator[None]:
    """The real django-q2 worker and durable poller, on this test's database."""
    env = process_env()
    with running(worker(env), poller(env)) as processes:
        yield
        for process in processes:
            assert process.alive, f"{process.name} died:\n{process.log()[-4000:]}"


@pytest.fixture
def shopper(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user(username="shopper", password=PASSWORD)
    services.save_payment_method(user, "pm_card_visa")
    return user


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make fresh browser profiles (cookies, cache); `javascript=False` turns scripts off."""
    made: list[BrowserContext] = []

    def make(*, javascript: bool = True) -> BrowserContext:
        ctx = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1100, "height": 800}
        )
        ctx.set_default_timeout(WAIT_MS)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def signed_in(
    new_context: Callable[..., BrowserContext], site: str, shopper: Any
) -> Callable[..., Page]:
    """Open pages signed in as `shopper` through the sign-in form."""

    def open_page(*, javascript: bool = True) -> Page:
        tab = new_context(javascript=javascript).new_page()
        sign_in(tab, site)
        return tab

    return open_page


@pytest.fixture
def page(signed_in: Callable[..., Page]) -> Page:
    """A page with scripts on, signed in as `shopper`, on the catalog."""
    return signed_in()
