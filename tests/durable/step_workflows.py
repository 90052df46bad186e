"""Workflows whose steps misbehave on purpose: transient database errors, real bugs, slow
calls to the outside world. Worker processes import this module through
DURABLE_WORKFLOW_MODULES; effects are rows of django.contrib.auth's Group table."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any

from django.contrib.auth.models import Group

import durable
from durable import OutcomeUnknown, StepFailed, WorkflowContext, workflow
from tests.support import fake_psp
from tests.support.transient_errors import provoke_transient_error

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


GATES: dict[str, threading.Event] = {}


def hang_first_calls(run_id: str, hanging_calls: int) -> str:
    """Hangs (until the test opens the run's gate) on its first `hanging_calls` calls."""
    call = _count_call(run_id)
    if call <= hanging_calls:
        GATES.setdefault(run_id, threading.Event()).wait(timeout=20)  # bounds a broken timeout
        return f"late answer {call}"
    return f"answer {call}"


@workflow("step_with_timeout")
def step_with_timeout(
    ctx: WorkflowContext, hanging_calls: int, max_attempts: int
) -> Generator[Any, Any, Any]:
    """A plain step with a timeout, whose first calls never answer in time."""
    try:
        answer = yield ctx.step(
            hang_first_calls, ctx.run_id, hanging_calls, timeout=0.5, max_attempts=max_attempts
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
    ctx: WorkflowContext, hanging_calls: int
) -> Generator[Any, Any, Any]:
    """A plain step with a timeout whose first calls never answer in time, each an unknown
    outcome (one attempt allowed)."""
    answer = yield ctx.step(
        hang_first_calls, ctx.run_id, hanging_calls, timeout=0.3, max_attempts=1, unknown_for=60
    )
    return {"answer": answer}


@workflow("pay_when_known")
def pay_when_known(ctx: WorkflowContext, psp_url: str, amount: str) -> Generator[Any, Any, Any]:
    """A charge allowed one attempt whose outcome, should its worker die, is unknown."""
    charge = yield ctx.step(charge_card, psp_url, amount, max_attempts=1, unknown_for=600)
    yield ctx.transaction(record_payment, ctx.run_id, charge["id"])
    return {"state": "CONFIRMED", "charge_id": charge["id"]}
