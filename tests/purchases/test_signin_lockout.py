"""One lockout per address for every sign-in (issue 29, items 1 and 4): the admin's sign-in, the
shop's and HTTP Basic count their failures together, and a locked-out attempt is answered
before any password is hashed, whichever path it takes. HTTP Basic also decides the per-user
rates before it hashes a password."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

from tests.purchases.sign_ins import CountingHasher, assert_throttled, basic

pytestmark = pytest.mark.django_db

PASSWORD = "pw-staff-123"


@pytest.fixture
def hashes(settings) -> type[CountingHasher]:
    settings.PASSWORD_HASHERS = ["tests.purchases.sign_ins.CountingHasher"]
    return CountingHasher


@pytest.fixture
def staff(hashes):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)
    hashes.calls = 0
    return user


def limit() -> int:
    return int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])


def admin_sign_in(address: str, password: str):
    client = Client(REMOTE_ADDR=address)
    return client.post("/admin/login/?next=/admin/", {"username": "boss", "password": password})


def shop_sign_in(address: str, password: str):
    client = Client(REMOTE_ADDR=address)
    return client.post("/accounts/login/", {"username": "boss", "password": password})


def test_the_admin_sign_in_locks_out_an_address_before_hashing(staff, hashes):
    for n in range(limit()):
        wrong = admin_sign_in("203.0.113.20", f"guess-{n}")
        assert wrong.status_code == 200 and "correct username and password" in wrong.text
    refused = admin_sign_in("203.0.113.20", PASSWORD)  # even the right password
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed sign-ins from here" in refused.text
    assert "_auth_user_id" not in refused.client.session
    assert hashes.calls == limit(), "the locked-out attempt hashed a password"
    # Another address signs in.
    assert admin_sign_in("198.51.100.20", PASSWORD).status_code == 302


def test_every_sign_in_counts_toward_the_same_lockout(staff, hashes):
    address = "203.0.113.21"
    tries = [admin_sign_in, shop_sign_in, lambda a, p: Client().get(
        "/api/purchases/", **basic("boss", p, a))]  # fmt: skip
    for n in range(limit()):
        tries[n % 3](address, f"guess-{n}")
    assert hashes.calls == limit()
    assert admin_sign_in(address, PASSWORD).status_code == 429
    assert shop_sign_in(address, PASSWORD).status_code == 429
    assert_throttled(Client().get("/api/purchases/", **basic("boss", PASSWORD, address)))
    assert hashes.calls == limit(), "a locked-out attempt hashed a password"


def test_any_password_check_with_the_request_is_refused_unhashed_when_locked_out(staff, hashes):
    # The backend is the guarantee, whatever view (a future one too) checks a password.
    request = RequestFactory().post("/anywhere", REMOTE_ADDR="203.0.113.22")
    for n in range(limit()):
        assert authenticate(request, username="boss", password=f"guess-{n}") is None
    assert hashes.calls == limit()
    assert authenticate(request, username="boss", password=PASSWORD) is None
    assert hashes.calls == limit()
    other = RequestFactory().post("/anywhere", REMOTE_ADDR="198.51.100.22")
    assert authenticate(other, username="boss", password=PASSWORD) == staff


def test_basic_decides_the_per_user_rates_before_hashing(make_user, hashes, monkeypatch):
    alice = make_user("alice", "pw-alice-123")
    token = Token.objects.create(user=alice)
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "cancel", "2/min")
    with_token = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    for n in range(2):
        assert Client().post(f"/api/cancel/k{n}", **with_token).status_code == 404
    assert_throttled(Client().post("/api/cancel/k2", **with_token))
    hashes.calls = 0
    refused = Client().post("/api/cancel/k3", **basic("alice", "pw-alice-123", "198.51.100.23"))
    assert_throttled(refused)
    assert hashes.calls == 0, "Basic hashed the password of a user over their rate"
    # The peek counted nothing: other endpoints answer, with Basic too (one hash each).
    answered = Client().get("/api/purchases/", **basic("alice", "pw-alice-123", "198.51.100.23"))
    assert answered.status_code == 200 and hashes.calls == 1
