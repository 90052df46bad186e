"""Security: anonymous users get nothing, users see only their own purchases (DESIGN.md §4.8),
CSRF guards session-authenticated writes, and error bodies leak nothing with DEBUG off."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.urls import reverse

from durable.models import WorkflowSignal
from purchases import selectors, services
from purchases import urls as page_urls
from purchases.models import Purchase

PUBLIC_PAGES = {"login", "logout"}
# Transactional, so that `on_commit` runs as in production (purchases start eagerly).
pytestmark = pytest.mark.django_db(transaction=True)

API_ENDPOINTS = [
    ("post", "/api/buy/sec-key"),
    ("post", "/api/cancel/sec-key"),
    ("get", "/api/status/sec-key"),
    ("get", "/api/purchases/"),
]


@pytest.fixture(autouse=True)
def _cheap_passwords(settings: Any) -> None:
    # HTTP Basic hashes the password on every request; PBKDF2's million rounds are not the point.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _long_window(settings: Any) -> None:
    # Purchases stay pending, and cancels in time, however slow the machine is.
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def call(client: Client, method: str, path: str, **extra: Any) -> Any:
    if method == "post":
        return client.post(path, {"item_id": "widget-001"}, "application/json", **extra)
    return client.get(path, **extra)


def page_paths() -> list[str]:
    """Every storefront page in purchases/urls.py as it is today, with a key where one is taken."""
    paths = {"/"}
    for pattern in page_urls.urlpatterns:
        if pattern.name in PUBLIC_PAGES:
            continue
        kwargs = {name: "sec-key" for name in pattern.pattern.converters}
        paths.add(reverse(pattern.name, kwargs=kwargs))
    return sorted(paths)


def page(name: str, **kwargs: str) -> str:
    """The page's path; a renamed page fails the test rather than skipping its assertions."""
    return reverse(name, kwargs=kwargs or None)


# --- anonymous ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), API_ENDPOINTS)
def test_the_api_refuses_anonymous_callers_with_json(method: str, path: str) -> None:
    response = call(Client(), method, path)
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


@pytest.mark.parametrize(("method", "path"), API_ENDPOINTS)
def test_the_api_refuses_wrong_credentials(method: str, path: str, make_user: Any) -> None:
    make_user("mallory", "right-password-123")
    response = call(Client(), method, path, **basic("mallory", "wrong-password-123"))
    assert response.status_code == 401
    token = call(Client(), method, path, HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert token.status_code == 401


@pytest.mark.parametrize("path", page_paths())
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_page_sends_anonymous_users_to_sign_in(method: str, path: str) -> None:
    response = getattr(Client(), method)(path)
    assert response.status_code == 302, (path, response.status_code)
    assert response["Location"].startswith(reverse(django_settings.LOGIN_URL) + "?next=")


# --- one user, another's purchase -----------------------------------------------------------------


@pytest.fixture
def two_users(make_user: Any, product: Any) -> tuple[Any, Any, Purchase]:
    alice = make_user("alice-sec", "pw-alice-sec-1")
    bob = make_user("bob-sec", "pw-bob-sec-1")
    bobs = services.buy(bob, "bobs-key", "widget-001").purchase
    return alice, bob, bobs


def test_a_user_cannot_read_cancel_or_list_another_users_purchase_over_the_api(
    two_users: tuple[Any, Any, Purchase],
) -> None:
    alice, _, bobs = two_users
    as_alice = basic("alice-sec", "pw-alice-sec-1")
    client = Client()
    status = client.get("/api/status/bobs-key", **as_alice)
    assert status.status_code == 404 and status.json()["status"] == "not_found"
    cancel = client.post("/api/cancel/bobs-key", **as_alice)
    assert cancel.status_code == 404 and cancel.json()["status"] == "not_found"
    assert not WorkflowSignal.objects.filter(run_id=bobs.run_id).exists(), "no cancel recorded"
    # The same key is Alice's own, separate purchase: keys are scoped to their user.
    mine = client.post(
        "/api/buy/bobs-key", {"item_id": "widget-001"}, "application/json", **as_alice
    )
    assert mine.status_code == 202
    listed = client.get("/api/purchases/", **as_alice).json()
    assert listed["count"] == 1 and [p["key"] for p in listed["results"]] == ["bobs-key"]
    own = Purchase.objects.get(user=alice, key="bobs-key")
    assert own.pk != bobs.pk and own.run_id != bobs.run_id
    assert selectors.purchase_status(bobs, refresh=True).state == "PENDING"


def test_a_user_cannot_see_or_cancel_another_users_purchase_on_the_pages(
    two_users: tuple[Any, Any, Purchase],
) -> None:
    alice, _, bobs = two_users
    client = Client()
    client.force_login(alice)
    for name in ("purchase", "purchase-status"):
        path = page(name, key="bobs-key")
        assert client.get(path).status_code == 404, path
    assert client.post(page("purchase-cancel", key="bobs-key")).status_code == 404
    orders = client.get(page("orders"))
    assert orders.status_code == 200 and b"bobs-key" not in orders.content
    assert not WorkflowSignal.objects.filter(run_id=bobs.run_id).exists()


# --- CSRF ---------------------------------------------------------------------------------------


def csrf_pair() -> tuple[str, str]:
    """A CSRF cookie value and a token that matches it, as a page's form would carry."""
    request = RequestFactory().get("/")
    token = get_token(request)
    return request.META["CSRF_COOKIE"], token


def test_session_authenticated_api_writes_need_the_csrf_token(make_user: Any, product: Any) -> None:
    user = make_user("csrf-user", "pw-csrf-user-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for path in ("/api/buy/csrf-key", "/api/cancel/csrf-key"):
        refused = client.post(path, {"item_id": "widget-001"}, "application/json")
        assert refused.status_code == 403, path
        assert "CSRF" in refused.json()["detail"]
    assert not Purchase.objects.filter(user=user).exists()
    cookie, token = csrf_pair()
    client.cookies[django_settings.CSRF_COOKIE_NAME] = cookie
    accepted = client.post(
        "/api/buy/csrf-key", {"item_id": "widget-001"}, "application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 202
    cancelled = client.post("/api/cancel/csrf-key", HTTP_X_CSRFTOKEN=token)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True


def test_session_authenticated_page_writes_need_the_csrf_token(
    make_user: Any, product: Any
) -> None:
    user = make_user("csrf-pages", "pw-csrf-pages-1")
    services.buy(user, "page-key", "widget-001")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for path in (page("buy"), page("purchase-cancel", key="page-key")):
        assert client.post(path, {"item_id": "widget-001"}).status_code == 403, path
    assert Purchase.objects.filter(user=user).count() == 1
    assert not WorkflowSignal.objects.exists()


def test_basic_authenticated_api_writes_need_no_csrf_token(make_user: Any, product: Any) -> None:
    make_user("api-client", "pw-api-client-1")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/buy/basic-key",
        {"item_id": "widget-001"},
        "application/json",
        **basic("api-client", "pw-api-client-1"),
    )
    assert response.status_code == 202


# --- error bodies -------------------------------------------------------------------------------


def leaks(body: str) -> list[str]:
    """What an error body must never contain with DEBUG off."""
    secrets = {
        "the secret key": django_settings.SECRET_KEY,
        "the database name": str(django_settings.DATABASES["default"]["NAME"]),
        "the project's path": str(django_settings.BASE_DIR),
        "a traceback": "Traceback",
        "a source line": 'File "',
        "the exception": "kaboom",
    }
    return [what for what, text in secrets.items() if text and text in body]


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"kaboom {django_settings.SECRET_KEY} {django_settings.DATABASES['default']['NAME']}"
        )

    # raising=True: a renamed function fails the test instead of leaving it unpatched.
    for target, name in (
        (services, "buy"),
        (services, "cancel"),
        (services, "get_purchase"),
        (selectors, "purchases_of"),
        (selectors, "active_products"),
    ):
        monkeypatch.setattr(target, name, explode, raising=True)


def test_an_api_500_is_the_generic_json_body(make_user: Any, failing: None) -> None:
    assert not django_settings.DEBUG
    make_user("victim", "pw-victim-123")
    client = Client(raise_request_exception=False)
    for method, path in API_ENDPOINTS:
        response = call(client, method, path, **basic("victim", "pw-victim-123"))
        assert response.status_code == 500, path
        assert response.json() == {"detail": "Internal server error.", "code": "internal_error"}
        assert not leaks(response.content.decode()), path


def test_a_page_500_shows_no_detail(make_user: Any, failing: None) -> None:
    assert not django_settings.DEBUG
    client = Client(raise_request_exception=False)
    client.force_login(make_user("page-victim"))
    response = client.get("/")
    assert response.status_code == 500
    assert not leaks(response.content.decode())


def test_client_errors_leak_nothing(make_user: Any) -> None:
    make_user("sloppy", "pw-sloppy-123")
    auth = basic("sloppy", "pw-sloppy-123")
    client = Client(raise_request_exception=False)
    answers = [
        (client.post("/api/buy/k1", "{not json", "application/json", **auth), 400, "item_id"),
        (
            client.post(
                "/api/buy/k1", json.dumps({"item_id": "x" * 10**5}), "application/json", **auth
            ),
            400,
            "item_id",
        ),
        (client.post("/api/buy/k1", "[1, 2]", "application/json", **auth), 400, "item_id"),
        (
            client.post("/api/buy/k1", {"item_id": "nope"}, "application/json", **auth),
            400,
            "item_id",
        ),
        (client.get("/api/buy/k1", **auth), 405, None),
        (client.get("/api/no-such-endpoint", **auth), 404, None),
        (client.get("/api/status/" + "x" * 65, **auth), 400, "key"),
    ]
    for response, status, field in answers:
        assert response.status_code == status, response.content[:200]
        assert response["Content-Type"].startswith("application/json")
        assert response.json().get("field") == field, response.content[:200]
        assert not leaks(response.content.decode()), response.content[:200]
    missing_page = client.get("/no-such-page/")
    assert missing_page.status_code == 404
    assert not leaks(missing_page.content.decode())
