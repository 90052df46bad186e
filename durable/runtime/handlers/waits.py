"""Waits for a workflow signal and durable sleeps: a deadline fixed by the database's clock the
first time, the run parked until then, the outcome recorded when it comes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from durable.core.commands import Sleep, WaitForSignal
from durable.core.replay import Resolved, Suspend
from durable.models import CheckpointStatus
from durable.persistence import store
from durable.runtime import metrics
from durable.runtime.handlers.live import LiveCommand


def wait_for_signal(live: LiveCommand[WaitForSignal]) -> Resolved | Suspend:
    """The oldest accepted signal not yet consumed, else TIMED_OUT once the deadline has
    passed, else the run parks until the deadline (or the signal)."""
    command, tx, recorded = live.command, live.tx, live.recorded
    tx.begin()
    now = tx.now()
    if recorded is not None:
        deadline = recorded.deadline
    elif command.until is not None:
        deadline = command.until
    else:
        deadline = now + dt.timedelta(seconds=command.timeout or 0)
    signal = store.consume_signal(tx.run_id, command.signal, live.position)
    if signal is not None:
        result: dict[str, Any] = {"signal_id": signal.pk, "payload": signal.payload}
        metrics.signal_resumed((timezone.now() - signal.sent_at).total_seconds())
    elif deadline is not None and now >= deadline:
        result = {"timed_out": True}
        metrics.wait_timed_out((now - deadline).total_seconds())
    else:
        return _park(live, deadline, f"waiting for {command.signal!r}", command.signal)
    if recorded is not None:
        # A sender may have decided the timeout since the history was read: its word stands.
        tx.forget_history()
        return Resolved(store.complete_pending_checkpoint(tx.run_id, live.position, result))
    live.finish(result, attempts=0, deadline=deadline)
    return Resolved(result)


def sleep(live: LiveCommand[Sleep]) -> Resolved | Suspend:
    """Parks the run until `seconds` after the sleep was first reached."""
    tx, recorded = live.tx, live.recorded
    tx.begin()
    now = tx.now()
    if recorded is not None and recorded.deadline is not None:
        deadline = recorded.deadline
    else:
        deadline = now + dt.timedelta(seconds=live.command.seconds)
    if now < deadline:
        return _park(live, deadline, "sleeping")
    live.finish(None, attempts=0, deadline=deadline)
    return Resolved(None)


def _park(
    live: LiveCommand[Any], deadline: dt.datetime | None, reason: str, signal: str = ""
) -> Suspend:
    """Suspend the run until `deadline` (or `signal`), its pending checkpoint holding the
    deadline for the runs that come back to it."""
    if live.recorded is None:
        live.save(CheckpointStatus.PENDING, attempts=0, deadline=deadline)
    store.suspend_run(live.tx.run_id, live.tx.owner, deadline, signal)
    return Suspend(deadline, reason)
