"""Workflows that are not purchases: they show the engine is generic, and give tests handles.

Worker processes import this module through DURABLE_WORKFLOW_MODULES. Effects are rows of
django.contrib.auth's Group table, so "exactly once" is a count of real rows.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from django.contrib.auth.models import Group

from durable import TIMED_OUT, StepFailed, WorkflowContext, workflow


def effect_count(prefix: str) -> int:
    """How many effect rows start with `prefix`."""
    return Group.objects.filter(name__startswith=prefix).count()


def deliver(run_id: str, message: str) -> str:
    Group.objects.create(name=f"sent:{run_id}")
    return f"receipt-for-{message}"


@workflow("send_with_undo")
def send_with_undo(
    ctx: WorkflowContext, message: str, undo_seconds: float
) -> Generator[Any, Any, dict[str, Any]]:
    """Send an email unless "undo" arrives within `undo_seconds` of the send request."""
    undo = yield ctx.wait_for_signal("undo", timeout=undo_seconds)
    if undo is not TIMED_OUT:
        return {"sent": False, "undone_by": undo}
    receipt = yield ctx.transaction(deliver, ctx.run_id, message)
    return {"sent": True, "receipt": receipt}


def record_effect(run_id: str, index: int, pause: float) -> int:
    # The pause is inside the step's transaction: a kill here must leave no effect behind.
    time.sleep(pause)
    Group.objects.create(name=f"effect:{run_id}:{index}")
    return index


def observe(run_id: str, index: int) -> int:
    Group.objects.create(name=f"observed:{run_id}:{index}:{time.monotonic_ns()}")
    return index * 10


@workflow("many_steps")
def many_steps(
    ctx: WorkflowContext, steps: int, pause: float, wait_seconds: float
) -> Generator[Any, Any, dict[str, Any]]:
    """Transactional steps, a plain step, a signal wait and a durable clock: one of each kind."""
    total = 0
    for index in range(steps):
        total += yield ctx.transaction(record_effect, ctx.run_id, index, pause)
    observed = yield ctx.step(observe, ctx.run_id, steps)
    started = yield ctx.now()
    go = yield ctx.wait_for_signal("go", timeout=wait_seconds)
    return {
        "total": total,
        "observed": observed,
        "signal": None if go is TIMED_OUT else go,
        "started": started.isoformat(),
    }


FLAKY_CALLS: dict[str, int] = {}


def flaky(run_id: str, failures: int) -> str:
    FLAKY_CALLS[run_id] = FLAKY_CALLS.get(run_id, 0) + 1
    if FLAKY_CALLS[run_id] <= failures:
        raise ConnectionError(f"attempt {FLAKY_CALLS[run_id]} failed")
    return "ok"


@workflow("flaky")
def flaky_workflow(
    ctx: WorkflowContext, failures: int, max_attempts: int
) -> Generator[Any, Any, dict[str, Any]]:
    """A step that fails `failures` times; a final failure is caught by the workflow."""
    try:
        outcome = yield ctx.step(flaky, ctx.run_id, failures, max_attempts=max_attempts)
    except StepFailed as exc:
        return {"outcome": "gave up", "error": exc.error}
    return {"outcome": outcome}


def note_to_self(run_id: str) -> None:
    from durable import send_signal

    send_signal(run_id, "note", "sent from a step of the same run")


@workflow("notes_to_self")
def notes_to_self(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """A transactional step sends its own run a signal, which the next wait must receive even
    though no time is left to wait."""
    yield ctx.transaction(note_to_self, ctx.run_id)
    note = yield ctx.wait_for_signal("note", timeout=0)
    return None if note is TIMED_OUT else note


@workflow("sleeper")
def sleeper(ctx: WorkflowContext, seconds: float) -> Generator[Any, Any, str]:
    """Durable sleep, then the time by the durable clock."""
    yield ctx.sleep(seconds)
    woke = yield ctx.now()
    return woke.isoformat()


@workflow("returns_a_set")
def returns_a_set(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """A bug in workflow code: it returns a value JSON cannot hold."""
    woke = yield ctx.now()
    return {"woke": woke.isoformat(), "ids": {1, 2}}
