"""What a workflow yields to the engine, and the context that builds those commands.

Commands are values: the engine decides whether to run them or to return their checkpoint.
Each command knows how to turn its recorded JSON back into the value the workflow receives, so
a live run and a replay hand the workflow exactly the same value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final


class _TimedOut:
    """The value a signal wait resolves to when its deadline passed with no signal."""

    _instance: _TimedOut | None = None

    def __new__(cls) -> _TimedOut:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TIMED_OUT"

    def __bool__(self) -> bool:
        return False


TIMED_OUT: Final = _TimedOut()

DEFAULT_MAX_ATTEMPTS = 3


def _callable_name(fn: Callable[..., Any]) -> str:
    """The step name recorded for `fn`: its `__name__`. A lambda or a functools.partial has no
    stable name (a recorded name must never hold a memory address), so it needs `name=`."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise ValueError(
            f"a step needs a stable name: pass name=... for {type(fn).__name__} objects such as "
            "lambdas and functools.partial"
        )
    return name


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command: `name` is what the checkpoint records and replay compares."""

    name: str

    kind = "command"

    def decode(self, recorded: Any) -> Any:
        """The workflow-facing value of a recorded JSON result."""
        return recorded


@dataclass(frozen=True, slots=True)
class Step(Command):
    """Call `fn(*args)`; checkpoint its JSON result. At least once: a crash before the checkpoint
    commits runs it again. Retried with exponential backoff up to `max_attempts`; an attempt
    that outlasts `timeout` seconds is abandoned and counts as failed. With `unknown_for`, an
    attempt whose outcome is unknown (OutcomeUnknown, StepTimedOut, its worker died) is retried
    without counting, for `unknown_for` seconds from the first such attempt, then the run is
    blocked. None of these is part of what replay compares, so they may change under runs in
    flight."""

    fn: Callable[..., Any] = field(repr=False)
    args: tuple[Any, ...] = ()
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    unknown_for: float | None = None

    kind = "step"


@dataclass(frozen=True, slots=True)
class TransactionStep(Step):
    """Call `fn(*args)` inside the transaction that writes its checkpoint: its writes to the
    same database happen exactly once."""

    kind = "transaction"


@dataclass(frozen=True, slots=True)
class WaitForSignal(Command):
    """Wait for the workflow signal `signal` until `until` (or for `timeout` seconds from the first
    time the wait is reached). Resolves to the signal's payload, or to TIMED_OUT."""

    signal: str = ""
    until: dt.datetime | None = None
    timeout: float | None = None

    kind = "wait"

    def decode(self, recorded: Any) -> Any:
        if recorded.get("timed_out"):
            return TIMED_OUT
        return recorded.get("payload")


@dataclass(frozen=True, slots=True)
class Sleep(Command):
    """Suspend the run for `seconds`; no worker is held meanwhile."""

    seconds: float = 0.0

    kind = "sleep"

    def decode(self, recorded: Any) -> Any:
        return None


@dataclass(frozen=True, slots=True)
class Now(Command):
    """The current time, recorded once so replay sees the same instant."""

    kind = "now"

    def decode(self, recorded: Any) -> dt.datetime:
        return dt.datetime.fromisoformat(recorded)


@dataclass(frozen=True, slots=True)
class Patch(Command):
    """Resolves to True for a run that reaches this point on code that has the patch (and is
    recorded), to False for a run that went past this point on code without it (and takes no
    position in its history). See `WorkflowContext.patched`."""

    kind = "patch"

    def decode(self, recorded: Any) -> bool:
        return bool(recorded)


def parse_deadline(value: dt.datetime | str) -> dt.datetime:
    """An aware datetime from a datetime or an ISO 8601 string; naive values are taken as UTC."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    """Handed to every workflow: its run id and the commands it may yield."""

    run_id: str

    def step(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float | None = None,
        unknown_for: float | None = None,
    ) -> Step:
        """Run `fn(*args)` as a checkpointed step (at least once). Each attempt may last at most
        `timeout` seconds (it then runs in a thread of its own, abandoned when late); the lease
        is renewed however long it lasts. `durable.current_step()` gives `fn` its idempotency
        key.

        `unknown_for` seconds: an attempt whose outcome is unknown (`fn` raised OutcomeUnknown,
        the attempt timed out, or its worker died during it) does not use up `max_attempts`; it
        is retried with the usual backoff, under the same key, until `unknown_for` seconds (by
        the database's clock) have passed since the first such attempt. Then the run is
        blocked, never failed, until an operator resumes it (a new horizon, the same key)."""
        if timeout is not None and timeout <= 0:
            raise ValueError("a step's timeout must be positive")
        if unknown_for is not None and unknown_for <= 0:
            raise ValueError("a step's unknown_for must be positive")
        return Step(name or _callable_name(fn), fn, args, max_attempts, timeout, unknown_for)

    def transaction(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> TransactionStep:
        """Run `fn(*args)` in the same transaction as its checkpoint (exactly once)."""
        return TransactionStep(name or _callable_name(fn), fn, args, max_attempts)

    def wait_for_signal(
        self,
        signal: str,
        *,
        until: dt.datetime | str | None = None,
        timeout: float | None = None,
    ) -> WaitForSignal:
        """Wait for `signal` until the deadline; exactly one of `until` and `timeout` is needed."""
        if (until is None) == (timeout is None):
            raise ValueError("wait_for_signal needs exactly one of until= and timeout=")
        deadline = None if until is None else parse_deadline(until)
        return WaitForSignal(f"wait:{signal}", signal, deadline, timeout)

    def sleep(self, seconds: float) -> Sleep:
        """Durable sleep: the run is suspended and woken by the poller."""
        return Sleep("sleep", seconds)

    def now(self) -> Now:
        """Durable clock: the same instant on every replay."""
        return Now("now")

    def patched(self, patch_id: str) -> Patch:
        """`if (yield ctx.patched("id")):` new code `else:` old code. True for runs that reach
        this point on code that has the patch, False for runs that went past it before; the
        answer is recorded, so every replay of a run gives the same one."""
        return Patch(f"patch:{patch_id}")
