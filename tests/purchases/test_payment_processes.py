"""Exactly one charge per confirmed purchase with real processes: django-q2 clusters SIGKILLed
while the provider holds its answers, and a provider that refuses connections for longer than
several retries. The provider is localstripe behind the idempotency proxy (devtools), which
replays a key's first answer as Stripe does; charges are counted at the provider."""

from __future__ import annotations

import email
import signal
from pathlib import Path

import pytest
import stripe
from django.contrib.auth import get_user_model

from devtools.processes import poller, running, wait_until, worker
from devtools.stripe_provider import TEST_API_KEY, Proxied, captured_charges
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from purchases import services
from purchases.models import Purchase
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def customers(count: int, payment_method: str = "pm_card_visa", prefix: str = "c") -> list:
    users = []
    for n in range(count):
        user = get_user_model().objects.create_user(
            f"{prefix}{n}", email=f"{prefix}{n}@example.com", password="unused-pw-123"
        )
        services.save_payment_method(user, payment_method)
        users.append(user)
    return users


def through(proxy: Proxied, **overrides: str) -> dict[str, str]:
    """The environment of a cluster and a poller whose provider is behind `proxy` (and whose
    emails go nowhere unless `overrides` say: there is no mail server to retry against)."""
    quiet = {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    return process_env(
        **{"STRIPE_API_BASE": proxy.api_base, "Q_WORKERS": "2", **quiet, **overrides}
    )


def finished(purchases: list[Purchase]):
    run_ids = [p.run_id for p in purchases]
    return lambda: all(run.is_finished for run in WorkflowRun.objects.filter(pk__in=run_ids))


def state_of(purchase: Purchase) -> str:
    return WorkflowRun.objects.get(pk=purchase.run_id).result["state"]


def emails_by_message_id(folder: Path) -> dict[str, list[str]]:
    """The emails the processes wrote (file backend), by Message-ID: each one's recipients."""
    sent: dict[str, list[str]] = {}
    for path in folder.glob("*.log"):
        for raw in path.read_text().split("\n" + "-" * 79 + "\n"):
            if raw.strip():
                message = email.message_from_string(raw.strip())
                sent.setdefault(message["Message-ID"], []).append(message["To"])
    return sent


def test_workers_killed_while_charges_are_in_flight_charge_each_confirmed_purchase_once(
    provider, product, tmp_path, settings
):
    direct = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": provider.api_base})
    paying = customers(4)
    declining = customers(1, "pm_card_chargeCustomerFail", prefix="d")
    cancelling = customers(1, prefix="x")
    with provider.proxied() as proxy:
        env = through(
            proxy,
            DURABLE_LEASE_SECONDS="2",
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(tmp_path),
        )
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = 30  # the cancelled one's window: no race
        cancelled = services.buy(cancelling[0], "k", "widget-001").purchase
        assert services.cancel(cancelling[0], "k").accepted
        settings.ONECLICK_CANCEL_WINDOW_SECONDS = 1
        # The provider makes each charge and then holds its answer back: the workers are killed
        # after being charged and before they could record it, twice.
        proxy.control.hold(True)
        bought = [services.buy(user, "k", "widget-001").purchase for user in paying + declining]
        cluster = worker(env)
        with running(cluster, poller(env)):
            for kill in (1, 2):
                wait_until(
                    lambda n=kill: proxy.control.report()["held"] >= 2 * n, 120,
                    message=cluster.log(),
                )  # fmt: skip
                cluster.kill(signal.SIGKILL)
                cluster.start()
            proxy.control.hold(False)
            wait_until(finished([*bought, cancelled]), 180, message=cluster.log())
        report = proxy.control.report()
    for purchase in bought:
        purchase.refresh_from_db()
        charges = captured_charges(direct, purchase.customer_id)
        if purchase.user in declining:
            assert state_of(purchase) == "PURCHASE_FAILED"
            assert purchase.payment_message == "Your card was declined."
            assert charges == []
        else:
            assert state_of(purchase) == "PURCHASE_CONFIRMED", purchase.run.error
            assert len(charges) == 1, charges
            assert charges[0]["amount"] == 999
            assert charges[0]["payment_intent"] == purchase.payment_intent_id
    # The kills did meet charges in flight: some were asked again and got the first answer.
    assert report["charge_requests"] > len(bought) and report["replayed"] >= 1, report
    assert state_of(cancelled) == "PURCHASE_CANCELLED"
    intents = direct.v1.payment_intents.list(params={"limit": 100}).data
    assert [i.id for i in intents if i.customer == cancelled.customer_id] == []
    # Email is at least once, and every copy of one purchase's email is the same message.
    sent = emails_by_message_id(tmp_path)
    for user in paying + declining + cancelling:
        ids = [message_id for message_id, to in sent.items() if user.email in to]
        assert len(ids) == 1, (user.email, sent)


def test_a_provider_down_for_several_retries_fails_nothing_and_charges_each_once_after(
    provider, product, settings
):
    direct = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": provider.api_base})
    users = customers(5)
    with provider.proxied() as proxy:
        env = through(proxy, STRIPE_MAX_NETWORK_RETRIES="0")
        proxy.control.refuse(True)
        cluster = worker(env)
        with running(cluster, poller(env)):
            bought = []
            # Deadlines spread over the outage: each purchase meets the provider down.
            for n, user in enumerate(users):
                settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.5 + n * 0.5
                bought.append(services.buy(user, "k", "widget-001").purchase)
            # Down for longer than several retry intervals (0.5 s, doubling) of every purchase:
            # counted in each one's unknown attempts, not in seconds.
            wait_until(
                lambda: not_failed(bought) and min(unknown_attempts(bought)) >= 3, 120,
                message=cluster.log(),
            )  # fmt: skip
            statuses = [services.purchase_status(p, refresh=True).as_json() for p in bought]
            assert all(s["status"] == "pending" and s["waiting_on_provider"] for s in statuses)
            proxy.control.refuse(False)
            wait_until(finished(bought), 180, message=cluster.log())
    for purchase in bought:
        purchase.refresh_from_db()
        assert state_of(purchase) == "PURCHASE_CONFIRMED", purchase.run.error
        assert len(captured_charges(direct, purchase.customer_id)) == 1


def not_failed(purchases: list[Purchase]) -> bool:
    """True while none of the purchases' runs has failed (raises once one has: no use waiting)."""
    failed = WorkflowRun.objects.filter(
        pk__in=[p.run_id for p in purchases], status=RunStatus.FAILED
    ).first()
    assert failed is None, f"{failed.pk} failed: {failed.error}"
    return True


def unknown_attempts(purchases: list[Purchase]) -> list[int]:
    """For each purchase, its attempts to charge that ended without an answer so far."""
    counts = dict(
        StepCheckpoint.objects.filter(
            run_id__in=[p.run_id for p in purchases], name="charge"
        ).values_list("run_id", "unknown_attempts")
    )
    return [counts.get(p.run_id, 0) for p in purchases]
