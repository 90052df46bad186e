"""Cancel and checkout take compatible locks: a cancel that lands at the deadline never deadlocks
with the worker confirming the purchase (PostgreSQL: SQLite's one write lock serialises them)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

import durable
from durable.models import StepCheckpoint, WorkflowRun
from durable.runtime.executor import AdvanceOutcome, advance
from purchases import services
from purchases.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def _waits_for_a_lock(backend_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-lock modes: PostgreSQL only (SQLite has one)"
)
def test_a_cancel_holding_the_purchase_while_the_worker_checks_out_does_not_deadlock(
    make_user, product, settings, monkeypatch
):
    """The interleaving, forced with events: the cancel has locked the purchase and checked the
    clock (window open), then the deadline passes; a worker leases the run (its row lock), decides
    the timeout and checks out (the order's foreign key wants a key-share lock on the purchase);
    then the cancel asks for the run's row. With a FOR UPDATE lock on the purchase that is a
    lock cycle, and PostgreSQL kills one of the two."""
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 3600
    user = make_user("racer")
    purchase = services.buy(user, "lock-order", "widget-001").purchase
    run_id = purchase.run_id
    assert WorkflowRun.objects.get(pk=run_id).status == "waiting"

    cancel_holds_purchase, go_on = threading.Event(), threading.Event()
    real_send_signal = durable.send_signal

    def send_signal_after_the_worker(*args, **kwargs):
        cancel_holds_purchase.set()
        assert go_on.wait(60)
        return real_send_signal(*args, **kwargs)

    monkeypatch.setattr(durable, "send_signal", send_signal_after_the_worker)
    answers: dict[str, object] = {}
    errors: list[BaseException] = []
    worker_pid: list[int] = []

    def cancel() -> None:
        try:
            answers["cancel"] = services.cancel(user, "lock-order").accepted
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def confirm() -> None:
        try:
            connection.ensure_connection()
            worker_pid.append(connection.connection.info.backend_pid)
            answers["advance"] = advance(run_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert cancel_holds_purchase.wait(60), errors
    # The deadline passes (moved, not waited for): the run is due and its wait times out.
    past = timezone.now() - dt.timedelta(seconds=1)
    StepCheckpoint.objects.filter(run_id=run_id, kind="wait").update(deadline=past)
    WorkflowRun.objects.filter(pk=run_id).update(wake_at=past)
    worker = threading.Thread(target=confirm)
    worker.start()
    # Until the worker has finished, or is stuck behind the cancel's lock on the purchase.
    while worker.is_alive() and not (worker_pid and _waits_for_a_lock(worker_pid[0])):
        worker.join(0.01)
    go_on.set()
    worker.join(60)
    canceller.join(60)

    assert errors == []
    assert answers == {"advance": AdvanceOutcome.FINISHED, "cancel": False}
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.result["state"] == "PURCHASE_CONFIRMED"
    assert Order.objects.filter(purchase=purchase).count() == 1
