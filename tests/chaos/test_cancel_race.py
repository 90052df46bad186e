"""A double click on Cancel at the very end of the window: both answers must match the outcome.

Found by the chaos run's concurrent cancels ("double"): the second click could read "no cancel
accepted yet", see the window closed and answer 409, while the first click, which had checked
the clock just before the deadline, was still sending its workflow signal, then accepted it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

import durable
from purchases import services
from purchases.services import CancelResult
from tests.support.inline import finish

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refusal_never_overlooks_a_cancel_being_accepted(
    make_user: Any, product: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.5
    user = make_user("double-clicker")
    purchase = services.buy(user, "dbl-click", "widget-001").purchase
    deadline = purchase.cancel_until.timestamp()
    send_signal = durable.send_signal
    first_is_sending = threading.Event()

    def slow_send_signal(run_id: str, name: str, payload: Any = None) -> Any:
        # The first click checked the clock inside the window; the window closes, and the
        # second click runs, before its workflow signal is recorded.
        first_is_sending.set()
        time.sleep(max(0.0, deadline - time.time()) + 0.3)
        return send_signal(run_id, name, payload)

    monkeypatch.setattr(durable, "send_signal", slow_send_signal)
    answers: dict[str, CancelResult] = {}
    errors: list[BaseException] = []

    def click(name: str, wait_for: threading.Event | None) -> None:
        try:
            if wait_for is not None:
                assert wait_for.wait(10)
                time.sleep(max(0.0, deadline - time.time()) + 0.05)
            answers[name] = services.cancel(user, "dbl-click")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=click, args=("first", None))
    second = threading.Thread(target=click, args=("second", first_is_sending))
    first.start()
    second.start()
    first.join(30)
    second.join(30)
    assert not errors, errors
    run = finish([purchase.run_id])[purchase.run_id]
    state = run.result["state"]
    for name, answer in answers.items():
        expected = "PURCHASE_CANCELLED" if answer.accepted else "PURCHASE_CONFIRMED"
        assert state == expected, f"the {name} click was answered accepted={answer.accepted}"
