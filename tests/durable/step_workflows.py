"""Workflows whose steps misbehave on purpose: transient database errors, real bugs, slow
calls to the outside world. Worker processes import this module through
DURABLE_WORKFLOW_MODULES; effects are rows of django.contrib.auth's Group table."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection

import durable
from durable import OutcomeUnknown, StepFailed, WorkflowContext, workflow
from tests.support import fake_psp
from tests.support.transient_errors import (
    break_the_next_write,
    lock_the_run_for_a_moment,
    provoke_transient_error,
)

CALLS: dict[str, int] = {}


def _count_call(run_id: str) -> int:
    CALLS[run_id] = CALLS.get(run_id, 0) + 1
    return CALLS[run_id]


def write_after_transient_errors(run_id: str, failures: int) -> int:
    """Writes its effect, but first meets a real transient database error `failures` times."""
    call = _count_call(run_id)
    Group.objects.create(name=f"effect:{run_id}:{call}")
    if call <= failures:
        provoke_transient_error()
    return call


def write_then_fail(run_id: str) -> None:
    """A real bug: writes, then raises every time."""
    call = _count_call(run_id)
    Group.objects.create(name=f"effect:{run_id}:{call}")
    raise ValueError(f"bug on call {call}")


@workflow("transient_errors")
def transient_errors(ctx: WorkflowContext, failures: int, plain: bool) -> Generator[Any, Any, Any]:
    """One step (transactional, or `plain`) that meets `failures` transient errors first."""
    make = ctx.step if plain else ctx.transaction
    calls = yield make(write_after_transient_errors, ctx.run_id, failures)
    return {"calls": calls}


def _count_call_in(path: str) -> int:
    """Counts calls across processes: one byte appended per call (O_APPEND writes are atomic)."""
    with open(path, "ab") as calls:
        calls.write(b".")
        return calls.tell()


def write_after_transient_errors_counted_in(path: str, run_id: str, failures: int) -> int:
    """As write_after_transient_errors, counting calls in a file shared by worker processes."""
    call = _count_call_in(path)
    Group.objects.create(name=f"effect:{run_id}:{call}")
    if call <= failures:
        provoke_transient_error()
    return call


@workflow("transient_errors_in_workers")
def transient_errors_in_workers(
    ctx: WorkflowContext, calls_file: str, failures: int
) -> Generator[Any, Any, Any]:
    """A transactional step that meets `failures` transient errors first, in any process."""
    calls = yield ctx.transaction(
        write_after_transient_errors_counted_in, calls_file, ctx.run_id, failures
    )
    return {"calls": calls}


@workflow("buggy_transaction")
def buggy_transaction(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """A transactional step that always fails; its final failure reaches the workflow."""
    try:
        yield ctx.transaction(write_then_fail, ctx.run_id)
    except StepFailed as exc:
        return {"failed": exc.error}
    return {"failed": None}


def block_until_released(run_id: str) -> str:
    """A call to the outside world that lasts until the test releases it (a row it writes)."""
    Group.objects.create(name=f"started:{run_id}:{time.monotonic_ns()}")
    while not Group.objects.filter(name=f"release:{run_id}").exists():
        time.sleep(0.05)
    return "released"


@workflow("long_step")
def long_step(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """One plain step that may outlast the lease many times over."""
    outcome = yield ctx.step(block_until_released, ctx.run_id)
    return {"outcome": outcome}


@workflow("long_step_with_attempts")
def long_step_with_attempts(ctx: WorkflowContext, max_attempts: int) -> Generator[Any, Any, Any]:
    """The long plain step, with a limit of attempts; its final failure is caught."""
    try:
        outcome = yield ctx.step(block_until_released, ctx.run_id, max_attempts=max_attempts)
    except StepFailed as exc:
        return {"failed": exc.error}
    return {"outcome": outcome}


KEYS_SEEN: dict[str, list[str]] = {}


def note_key_then_fail(run_id: str, failures: int) -> str:
    """Notes the step's idempotency key on each call; fails the first `failures` calls."""
    key = durable.current_step().idempotency_key
    KEYS_SEEN.setdefault(run_id, []).append(key)
    if len(KEYS_SEEN[run_id]) <= failures:
        raise ConnectionError("the provider did not answer")
    return key


@workflow("two_keyed_steps")
def two_keyed_steps(ctx: WorkflowContext, failures: int) -> Generator[Any, Any, Any]:
    """Two plain steps that note their keys; the first fails `failures` times."""
    first = yield ctx.step(note_key_then_fail, ctx.run_id, failures)
    second = yield ctx.step(note_key_then_fail, ctx.run_id, 0)
    return [first, second]


def charge_card(psp_url: str, amount: str) -> dict[str, Any]:
    """Charge through the payment provider under the step's idempotency key."""
    return fake_psp.charge(psp_url, amount, durable.current_step().idempotency_key)


def record_payment(run_id: str, charge_id: str) -> None:
    Group.objects.create(name=f"paid:{run_id}:{charge_id}")


@workflow("pay_then_confirm")
def pay_then_confirm(ctx: WorkflowContext, psp_url: str, amount: str) -> Generator[Any, Any, Any]:
    """A purchase paid through an external provider: the charge is a plain step (at least
    once), made once by the provider thanks to the step's idempotency key."""
    charge = yield ctx.step(charge_card, psp_url, amount, max_attempts=5)
    yield ctx.transaction(record_payment, ctx.run_id, charge["id"])
    return {"state": "CONFIRMED", "charge_id": charge["id"]}


LATER_CALL_STARTED: dict[tuple[str, int], threading.Event] = {}
IN_CALL: dict[str, int] = {}
MOST_AT_ONCE: dict[str, int] = {}
_in_call_lock = threading.Lock()


def answer_late_first_calls(run_id: str, late_calls: int) -> str:
    """Answers late (after 1.5 s, past a 0.5 s timeout) on its first `late_calls` calls, unless
    a later call of the run starts meanwhile; notes how many calls of the run ran at once."""
    with _in_call_lock:
        call = _count_call(run_id)
        for earlier in range(1, call):
            LATER_CALL_STARTED.setdefault((run_id, earlier), threading.Event()).set()
        later_call = LATER_CALL_STARTED.setdefault((run_id, call), threading.Event())
        IN_CALL[run_id] = IN_CALL.get(run_id, 0) + 1
        MOST_AT_ONCE[run_id] = max(MOST_AT_ONCE.get(run_id, 0), IN_CALL[run_id])
    try:
        if call <= late_calls:
            # A copy started beside this one ends the wait at once: the overlap is noted.
            later_call.wait(timeout=1.5)
            return f"late answer {call}"
        return f"answer {call}"
    finally:
        with _in_call_lock:
            IN_CALL[run_id] -= 1


@workflow("step_with_timeout")
def step_with_timeout(
    ctx: WorkflowContext, late_calls: int, max_attempts: int
) -> Generator[Any, Any, Any]:
    """A plain step with a timeout, whose first calls answer too late."""
    try:
        answer = yield ctx.step(
            answer_late_first_calls, ctx.run_id, late_calls, timeout=0.5, max_attempts=max_attempts
        )
    except StepFailed as exc:
        return {"failed": exc.error}
    return {"answer": answer}


@workflow("buggy_transaction_unhandled")
def buggy_transaction_unhandled(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """The failing transactional step, whose final failure the workflow lets through."""
    yield ctx.transaction(write_then_fail, ctx.run_id)


# Per run: what the next calls of `answer_once_known` do ("unknown" or "fail"); then answer.
NEXT_CALLS: dict[str, list[str]] = {}


def answer_once_known(run_id: str) -> str:
    """Notes its idempotency key; then, as the run's next scripted call says, raises
    OutcomeUnknown, or fails (a definite error), or answers its key."""
    key = durable.current_step().idempotency_key
    KEYS_SEEN.setdefault(run_id, []).append(key)
    script = NEXT_CALLS.get(run_id, [])
    call = script.pop(0) if script else "answer"
    if call == "unknown":
        raise OutcomeUnknown("the provider did not answer")
    if call == "fail":
        raise ValueError(f"card declined (call {len(KEYS_SEEN[run_id])})")
    return key


@workflow("step_with_unknown_outcomes")
def step_with_unknown_outcomes(
    ctx: WorkflowContext, max_attempts: int, unknown_for: float | None
) -> Generator[Any, Any, Any]:
    """One plain step whose first calls cannot tell whether their effect happened."""
    try:
        key = yield ctx.step(
            answer_once_known, ctx.run_id, max_attempts=max_attempts, unknown_for=unknown_for
        )
    except StepFailed as exc:
        return {"failed": exc.error}
    return {"key": key}


@workflow("timed_out_step_with_unknown_outcomes")
def timed_out_step_with_unknown_outcomes(
    ctx: WorkflowContext, late_calls: int
) -> Generator[Any, Any, Any]:
    """A plain step with a timeout whose first calls answer too late, each an unknown outcome
    (one attempt allowed)."""
    answer = yield ctx.step(
        answer_late_first_calls, ctx.run_id, late_calls, timeout=0.5, max_attempts=1,
        unknown_for=60,
    )  # fmt: skip
    return {"answer": answer}


@workflow("pay_when_known")
def pay_when_known(ctx: WorkflowContext, psp_url: str, amount: str) -> Generator[Any, Any, Any]:
    """A charge allowed one attempt whose outcome, should its worker die, is unknown."""
    charge = yield ctx.step(charge_card, psp_url, amount, max_attempts=1, unknown_for=600)
    yield ctx.transaction(record_payment, ctx.run_id, charge["id"])
    return {"state": "CONFIRMED", "charge_id": charge["id"]}


def write_then_break_the_bookkeeping(run_id: str) -> str:
    """Writes its effect and returns, leaving the engine's next write to meet a real transient
    database error."""
    Group.objects.create(name=f"effect:{run_id}:{_count_call(run_id)}")
    break_the_next_write()
    return "done"


@workflow("step_then_bookkeeping_error")
def step_then_bookkeeping_error(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """A plain step of one attempt whose result meets a transient error while being recorded."""
    outcome = yield ctx.step(write_then_break_the_bookkeeping, ctx.run_id, max_attempts=1)
    return {"outcome": outcome}


def held_call(run_id: str, release_path: str) -> str:
    """A call to the outside world that lasts until the test creates `release_path` (it holds no
    database connection meanwhile). Notes its start, and how many calls its process had in
    flight at once as it started."""
    with _in_call_lock:
        key = f"pid:{os.getpid()}"
        IN_CALL[key] = IN_CALL.get(key, 0) + 1
        at_once = IN_CALL[key]
    try:
        Group.objects.create(name=f"started:{run_id}:{time.monotonic_ns()}")
        Group.objects.create(name=f"at-once:{os.getpid()}:{at_once}:{run_id}:{time.monotonic_ns()}")
        connection.close()
        while not os.path.exists(release_path):
            time.sleep(0.02)
        return "released"
    finally:
        with _in_call_lock:
            IN_CALL[key] -= 1


@workflow("held_step")
def held_step(ctx: WorkflowContext, release_path: str) -> Generator[Any, Any, Any]:
    """One plain step held until the test releases it, then a transactional one."""
    outcome = yield ctx.step(held_call, ctx.run_id, release_path)
    yield ctx.transaction(record_payment, ctx.run_id, outcome)
    return {"outcome": outcome}


def write_then_lock_the_run(run_id: str) -> str:
    """Writes its effect and returns, the run locked for a moment by another connection: the
    recording of its answer meets a lock it gives up waiting for (a transient error)."""
    Group.objects.create(name=f"effect:{run_id}:{_count_call(run_id)}")
    lock_the_run_for_a_moment(run_id)
    return "done"


@workflow("step_then_run_locked")
def step_then_run_locked(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """A plain step of one attempt whose answer meets a transient error while being recorded."""
    outcome = yield ctx.step(write_then_lock_the_run, ctx.run_id, max_attempts=1)
    return {"outcome": outcome}


@workflow("two_held_steps")
def two_held_steps(ctx: WorkflowContext, first: str, second: str) -> Generator[Any, Any, Any]:
    """Two plain steps, each held until the test creates its file."""
    yield ctx.step(held_call, f"{ctx.run_id}-first", first)
    outcome = yield ctx.step(held_call, f"{ctx.run_id}-second", second)
    return {"outcome": outcome}
