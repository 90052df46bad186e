"""`manage.py prune_workflows`: old finished runs lose their history; orders and their purchase
runs stay; active and recent runs are untouched."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from durable.models import EngineHeartbeat, StepCheckpoint, WorkflowRun, WorkflowSignal
from durable.ops.retention import prune
from purchases import services
from purchases.models import Order, Purchase
from tests.ops.runs import finished_run, waiting_run
from tests.support.inline import finish

pytestmark = pytest.mark.django_db


def history(run_id: str) -> tuple[int, int]:
    return (
        StepCheckpoint.objects.filter(run_id=run_id).count(),
        WorkflowSignal.objects.filter(run_id=run_id).count(),
    )


def prune_command(*args: str) -> str:
    out = StringIO()
    call_command("prune_workflows", *args, stdout=out)
    return out.getvalue()


def confirmed_purchase(user: AbstractBaseUser, key: str, days_ago: float) -> Purchase:
    """A purchase whose window is over, checked out, with its run finished `days_ago` days ago."""
    # With no window the eager start checks out in the buy's own transaction; the charge and
    # the email are plain steps, made here.
    with override_settings(ONECLICK_CANCEL_WINDOW_SECONDS=0):
        bought = services.buy(user, key, "widget-001")
    finish([bought.purchase.run_id])
    run = WorkflowRun.objects.get(pk=bought.purchase.run_id)
    assert run.result["state"] == "PURCHASE_CONFIRMED", (run.status, run.error)
    WorkflowRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    return Purchase.objects.get(pk=bought.purchase.pk)


def test_old_finished_runs_are_deleted_with_their_history():
    finished_run("ops-old", days_ago=40)
    assert history("ops-old") == (2, 1)
    report = prune(dt.timedelta(days=30))
    assert (report.runs_examined, report.runs_deleted, report.runs_kept) == (1, 1, 0)
    assert (report.checkpoints, report.signals) == (2, 1)
    assert not WorkflowRun.objects.filter(pk="ops-old").exists()
    assert history("ops-old") == (0, 0)


def test_recent_finished_runs_and_active_runs_are_untouched():
    finished_run("ops-recent", days_ago=10)
    waiting_run("ops-active")
    # An active run that started long ago is still kept, whatever its age.
    WorkflowRun.objects.filter(pk="ops-active").update(
        created_at=timezone.now() - dt.timedelta(days=400)
    )
    report = prune(dt.timedelta(days=30))
    assert report.runs_examined == 0
    assert history("ops-recent") == (2, 1)
    assert history("ops-active") == (1, 0)
    assert WorkflowRun.objects.filter(pk__in=["ops-recent", "ops-active"]).count() == 2


def test_a_purchase_keeps_its_run_row_and_order_but_loses_the_run_history(make_user, product):
    user = make_user()
    purchase = confirmed_purchase(user, "old-order", days_ago=90)
    order_number = Order.objects.get(purchase=purchase).order_number
    # wait, checkout, charge, record_payment, compose_email (a customer without an address)
    assert history(purchase.run_id)[0] == 5
    finished_run("ops-unprotected", days_ago=90)

    report = prune(dt.timedelta(days=30))

    assert (report.runs_examined, report.runs_deleted, report.runs_kept) == (2, 1, 1)
    assert history(purchase.run_id) == (0, 0)
    run = WorkflowRun.objects.get(pk=purchase.run_id)
    assert run.result == {
        "state": "PURCHASE_CONFIRMED", "item_id": "widget-001", "order_id": order_number,
    }  # fmt: skip
    order = Order.objects.get(purchase=purchase)
    assert order.order_number == order_number and order.price_paid == Decimal("9.99")
    assert not WorkflowRun.objects.filter(pk="ops-unprotected").exists()
    # The customer still reads the same final status.
    assert services.get_purchase(user, "old-order").run.result["order_id"] == order_number
    # A second prune has nothing left to examine: the protected row is not revisited.
    assert prune(dt.timedelta(days=30)).runs_examined == 0


def test_dry_run_counts_and_changes_nothing(make_user, product):
    confirmed_purchase(make_user(), "dry", days_ago=60)
    finished_run("ops-dry", days_ago=60)
    EngineHeartbeat.objects.create(
        kind="worker", host="gone", pid=1, last_seen=timezone.now() - dt.timedelta(days=60)
    )
    text = prune_command("--older-than", "30", "--dry-run")
    assert "runs finished before" in text
    assert (
        ": 2; would delete 7 checkpoint(s), 1 workflow signal(s), 1 run(s), 1 stale heartbeat(s);"
        " kept 1 protected run row(s)"
    ) in text
    assert WorkflowRun.objects.count() == 2 and StepCheckpoint.objects.count() == 7
    assert EngineHeartbeat.objects.count() == 1


def test_the_command_deletes_and_reports_and_stale_heartbeats_go_too():
    finished_run("ops-cmd", days_ago=5)
    EngineHeartbeat.objects.create(
        kind="poller", host="gone", pid=2, last_seen=timezone.now() - dt.timedelta(days=5)
    )
    EngineHeartbeat.objects.create(kind="poller", host="here", pid=3, last_seen=timezone.now())
    text = prune_command("--older-than", "1")
    assert "deleted 2 checkpoint(s), 1 workflow signal(s), 1 run(s), 1 stale heartbeat(s)" in text
    assert not WorkflowRun.objects.exists()
    assert list(EngineHeartbeat.objects.values_list("host", flat=True)) == ["here"]


def test_the_default_age_comes_from_the_retention_setting(settings):
    finished_run("ops-setting", days_ago=5)
    settings.DURABLE = {**settings.DURABLE, "RETENTION_DAYS": 7}
    assert prune().runs_examined == 0
    with override_settings(DURABLE={**settings.DURABLE, "RETENTION_DAYS": 3}):
        assert "deleted 2 checkpoint(s)" in prune_command()
    assert not WorkflowRun.objects.filter(pk="ops-setting").exists()


def test_batches_cover_every_run():
    for n in range(7):
        finished_run(f"ops-batch-{n}", days_ago=31)
    report = prune(dt.timedelta(days=30), batch_size=3)
    assert (report.runs_examined, report.runs_deleted, report.checkpoints) == (7, 7, 14)
    assert not WorkflowRun.objects.exists()


def test_a_negative_age_is_refused():
    with pytest.raises(CommandError, match="must not be negative"):
        prune_command("--older-than", "-1")
