"""A double click on Cancel at the very end of the window: both answers must match the outcome.

Found by the chaos run's concurrent cancels ("double"): the first click had its workflow signal
accepted just before the deadline, but not yet committed; the second click, past the deadline,
saw no accepted cancel and answered 409, and the purchase then ended CANCELLED. The purchase's
row lock in `services.cancel` makes the second click wait for the first one's verdict.

The race is constructed, not hoped for: the first click stops right after its signal was
accepted, inside its transaction; the second click, whose clock reads past the deadline, runs
into the first's critical section; only then does the first click commit.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection

import durable
from devtools.processes import wait_until
from durable.persistence import store
from purchases import services
from purchases.services import CancelResult
from tests.support.inline import finish
from tests.support.threads import backend_pid, waits_for_a_lock

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refusal_never_overlooks_a_cancel_being_accepted(
    make_user: Any, product: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60
    user = make_user("double-clicker")
    purchase = services.buy(user, "dbl-click", "widget-001").purchase
    first_accepted, second_started, second_done = (threading.Event() for _ in range(3))
    second_pid: list[int | None] = []
    threads: dict[str, threading.Thread] = {}

    record_signal = store.record_signal

    def record_then_hold(run_id: str, name: str, payload: Any) -> Any:
        verdict = record_signal(run_id, name, payload)
        if threading.current_thread() is threads["first"]:
            # Accepted, not yet committed: the second click comes now.
            assert verdict.accepted
            first_accepted.set()
            assert second_started.wait(30)
            if connection.vendor == "postgresql":
                # It must queue for this click's verdict (or, without the lock, be done already).
                wait_until(
                    lambda: second_done.is_set() or waits_for_a_lock(second_pid[0]),
                    timeout=30,
                    message="the second click neither waited nor finished",
                )
            # SQLite: the second click's transaction cannot begin until this one commits.
        return verdict

    database_now = durable.database_now

    def clock(*args: Any) -> dt.datetime:
        if threading.current_thread() is threads["second"]:
            return purchase.cancel_until + dt.timedelta(seconds=1)  # the window has closed
        return database_now(*args)

    monkeypatch.setattr(store, "record_signal", record_then_hold)
    monkeypatch.setattr(durable, "database_now", clock)
    answers: dict[str, CancelResult] = {}
    errors: list[BaseException] = []

    def click(name: str) -> None:
        try:
            if name == "second":
                assert first_accepted.wait(30)
                second_pid.append(backend_pid())
                second_started.set()
            answers[name] = services.cancel(user, "dbl-click")
        except BaseException as exc:
            errors.append(exc)
        finally:
            if name == "second":
                second_done.set()
            connection.close()

    threads.update(
        (name, threading.Thread(target=click, args=(name,))) for name in ("first", "second")
    )
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(60)
    assert not errors, errors
    assert set(answers) == {"first", "second"}
    assert answers["first"].accepted, "the first click was in time"
    run = finish([purchase.run_id])[purchase.run_id]
    assert run.result["state"] == "PURCHASE_CANCELLED"
    assert answers["second"].accepted, "the second click was refused though a cancel was accepted"
