"""A purchase whose workflow the deployed code cannot replay: pending with an honest message,
its cancel window still honoured, and finished as the customer decided once the code is back."""

from __future__ import annotations

import pytest

from durable.core import registry
from durable.models import RunStatus, WorkflowRun
from durable.ops import recovery
from durable.runtime.executor import AdvanceOutcome, advance
from purchases import services
from purchases.models import Order
from purchases.selectors import DELAYED_MESSAGE
from purchases.services import run_id_for
from tests.support.inline import finish

# Transactional, so that `on_commit` runs as in production: purchases start eagerly.
pytestmark = pytest.mark.django_db(transaction=True)


def step_before_the_wait(ctx, item_id, cancel_until):
    """one_click_buy with a step inserted before its wait: incompatible with runs in flight."""
    yield ctx.transaction(services.record_cancellation, ctx.run_id)
    yield ctx.wait_for_signal("cancel", until=cancel_until)
    return {"state": "PURCHASE_CONFIRMED"}


@pytest.fixture
def incompatible_deploy(monkeypatch):
    """Deploy the incompatible change; returns the rollback."""
    versions = dict(registry._workflows["one_click_buy"])

    def deploy():
        monkeypatch.setitem(registry._workflows, "one_click_buy", {1: step_before_the_wait})
        return lambda: monkeypatch.setitem(registry._workflows, "one_click_buy", versions)

    return deploy


def park(run_id: str) -> None:
    if WorkflowRun.objects.get(pk=run_id).status == RunStatus.PENDING:
        assert advance(run_id, fresh=True) is AdvanceOutcome.SUSPENDED


def block(run_id: str) -> None:
    WorkflowRun.objects.filter(pk=run_id).update(status=RunStatus.PENDING, wake_at=None)
    assert advance(run_id) is AdvanceOutcome.BLOCKED


def test_a_blocked_purchase_is_pending_and_delayed_and_a_cancel_in_its_window_wins(
    api, alice, product, settings, incompatible_deploy
):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60
    assert api.post("/api/buy/k1", {"item_id": "widget-001"}, format="json").status_code == 202
    assert api.post("/api/buy/k2", {"item_id": "widget-001"}, format="json").status_code == 202
    for key in ("k1", "k2"):
        park(run_id_for(alice.pk, key))
    rollback = incompatible_deploy()
    for key in ("k1", "k2"):
        block(run_id_for(alice.pk, key))
    body = api.get("/api/status/k1").json()
    assert body["status"] == "pending" and body["delayed"] is True
    assert body["message"] == DELAYED_MESSAGE
    cancelled = api.post("/api/cancel/k1")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    rollback()
    assert len(recovery.resume_blocked()) == 2
    WorkflowRun.objects.filter(pk=run_id_for(alice.pk, "k2")).update(wake_at=None)
    runs = finish([run_id_for(alice.pk, "k1")])
    assert runs[run_id_for(alice.pk, "k1")].result["state"] == "PURCHASE_CANCELLED"
    assert api.get("/api/status/k1").json()["result"]["state"] == "PURCHASE_CANCELLED"
    assert "delayed" not in api.get("/api/status/k2").json(), "resumed: back at its wait"
    assert Order.objects.count() == 0


def test_the_purchase_page_says_it_is_delayed(client, alice, product, incompatible_deploy):
    client.force_login(alice)
    client.post("/api/buy/k3", {"item_id": "widget-001"}, content_type="application/json")
    park(run_id_for(alice.pk, "k3"))
    incompatible_deploy()
    block(run_id_for(alice.pk, "k3"))
    page = client.get("/purchases/k3/")
    assert page.status_code == 200 and b"data-delayed" in page.content
    assert b"delayed by maintenance" in page.content
