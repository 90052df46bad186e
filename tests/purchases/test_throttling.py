"""Rate limits: failed sign-ins per address (cut off before hashing), scoped buy and cancel
rates, a bound on pending purchases per customer. Refusals are 429 JSON with Retry-After."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.throttling import SimpleRateThrottle

from tests.purchases.sign_ins import CountingHasher, assert_throttled, basic
from tests.support.manage import run_manage

pytestmark = pytest.mark.django_db


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.purchases.sign_ins.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


def test_a_basic_brute_force_is_cut_off_and_costs_no_more_hashing(make_user, counting_hasher):
    make_user("alice", "pw-alice-123")
    counting_hasher.calls = 0
    limit = int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])
    guesses = [
        Client().get("/api/purchases/", **basic("alice", f"guess-{n}", "203.0.113.7"))
        for n in range(limit + 20)
    ]
    assert [g.status_code for g in guesses[:limit]] == [401] * limit
    for refused in guesses[limit:]:
        assert_throttled(refused)
    assert counting_hasher.calls == limit, "a throttled guess computes no password hash"
    # Even the right password is refused from that address until the period has passed...
    assert_throttled(
        Client().get("/api/purchases/", **basic("alice", "pw-alice-123", "203.0.113.7"))
    )
    assert counting_hasher.calls == limit
    # ...while other addresses are not affected.
    other = Client().get("/api/purchases/", **basic("alice", "pw-alice-123", "198.51.100.2"))
    assert other.status_code == 200


def test_a_forged_forwarded_for_header_does_not_reset_the_count(counting_hasher):
    limit = int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])
    for n in range(limit + 5):
        Client().get(
            "/api/purchases/",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
            **basic(f"nobody-{n}", "x", "203.0.113.8"),
        )
    assert counting_hasher.calls == limit


def test_unknown_users_count_as_failures_too(counting_hasher):
    limit = int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])
    for n in range(limit + 5):
        Client().get("/api/purchases/", **basic(f"nobody-{n}", "x", "203.0.113.9"))
    assert counting_hasher.calls == limit


def test_buy_and_cancel_have_their_own_rates(api, product, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "buy", "3/min")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "cancel", "2/min")
    answers = [
        api.post(f"/api/buy/t{n}", {"item_id": "widget-001"}, format="json") for n in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [202] * 3
    assert_throttled(answers[3])
    assert api.get("/api/status/t0").status_code == 200, "other endpoints keep their own rate"
    cancels = [api.post(f"/api/cancel/t{n}") for n in range(3)]
    assert [c.status_code for c in cancels[:2]] == [200, 200]
    assert_throttled(cancels[2])


RATES = "REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']"


def test_rates_come_from_the_environment():
    result = run_manage(
        "shell", "-c", f"from django.conf import settings; print(settings.{RATES})",
        env_overrides={"ONECLICK_THROTTLE_BUY": "7/min", "ONECLICK_THROTTLE_CANCEL": "off",
                       "DJANGO_DEBUG": "true"},
    )  # fmt: skip
    rates = result.stdout.strip().splitlines()[-1]
    assert "'buy': '7/min'" in rates and "'cancel': None" in rates, result.stderr


def test_pending_purchases_per_customer_are_bounded(api, product, settings):
    settings.ONECLICK_MAX_PENDING_PURCHASES = 2
    for n in range(2):
        assert (
            api.post(f"/api/buy/p{n}", {"item_id": "widget-001"}, format="json").status_code == 202
        )
    refused = api.post("/api/buy/p2", {"item_id": "widget-001"}, format="json")
    assert_throttled(refused)
    assert "too many purchases waiting" in refused.json()["detail"]
    again = api.post("/api/buy/p1", {"item_id": "widget-001"}, format="json")
    assert again.status_code == 200, "a retry of a purchase already made is still answered"


def test_the_buy_page_says_so_when_too_many_are_pending(alice, product, settings):
    from tests.purchases.pages import buy_from_catalog, messages_of

    settings.ONECLICK_MAX_PENDING_PURCHASES = 1
    client = Client()
    client.force_login(alice)
    buy_from_catalog(client)
    response, _ = buy_from_catalog(client)
    assert any("too many purchases waiting" in m for m in messages_of(response))
    assert alice.purchases.count() == 1


def test_the_counts_are_shared_by_the_processes_of_the_machine():
    # gunicorn's processes each serve part of the requests: a count kept in one process's memory
    # would multiply every limit by their number.
    from django.core.cache import cache

    cache.set("throttle-shared-check", [1.0, 2.0], 60)
    result = run_manage(
        "shell", "-c",
        "from django.core.cache import cache; print(cache.get('throttle-shared-check'))",
        env_overrides={"DJANGO_DEBUG": "true"},
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[1.0, 2.0]", result.stderr


def test_the_sign_in_form_is_throttled_before_hashing_too(make_user, counting_hasher):
    make_user("alice", "pw-alice-123")
    counting_hasher.calls = 0
    limit = int(SimpleRateThrottle.THROTTLE_RATES["auth_failure"].split("/")[0])
    client = Client(REMOTE_ADDR="203.0.113.5")
    for n in range(limit):
        wrong = client.post("/accounts/login/", {"username": "alice", "password": f"guess-{n}"})
        assert wrong.status_code == 200
    refused = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed sign-ins from here" in refused.content.decode()
    assert 'value="alice"' in refused.content.decode()
    assert counting_hasher.calls == limit
    # The API counts the same failures: that address is over its limit there too.
    assert_throttled(Client().get("/api/purchases/", **basic("alice", "x", "203.0.113.5")))
