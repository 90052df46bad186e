"""The replay core: drives a workflow generator against its recorded checkpoints.

Pure: no database, no clock. Commands already recorded return their checkpoint without running;
the first command without a finished checkpoint is handed to `execute`, which runs it live (or
decides that the run must suspend). Everything the engine knows about generators lives here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from durable.commands import Command
from durable.errors import ReplayDivergence, StepFailed


@dataclass(frozen=True, slots=True)
class Recorded:
    """A checkpoint as replay sees it. `done` False means the command started but has no result
    yet (a wait that is still open, a step between retries)."""

    name: str
    done: bool
    result: Any = None
    error: str | None = None
    attempts: int = 0
    deadline: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """`execute` produced the command's result (already JSON, as it was recorded)."""

    recorded: Any


@dataclass(frozen=True, slots=True)
class Raised:
    """`execute` recorded a final failure of the command."""

    error: str


@dataclass(frozen=True, slots=True)
class Suspend:
    """`execute` suspended the run: nothing more can happen before `wake_at` (or a signal)."""

    wake_at: dt.datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class Completed:
    value: Any


@dataclass(frozen=True, slots=True)
class Crashed:
    """The workflow raised (or was asked to yield something that is not a command)."""

    error: str


@dataclass(frozen=True, slots=True)
class Diverged:
    error: ReplayDivergence


@dataclass(frozen=True, slots=True)
class Suspended:
    position: int
    suspend: Suspend


Outcome = Completed | Crashed | Diverged | Suspended
Executor = Callable[[int, Command, Recorded | None], Resolved | Raised | Suspend]


def describe(exc: BaseException) -> str:
    """The text recorded for an exception: its type and message."""
    return f"{type(exc).__name__}: {exc}"


def drive(
    generator: Generator[Any, Any, Any],
    history: Mapping[int, Recorded],
    execute: Executor,
) -> Outcome:
    """Advance `generator` as far as it can go.

    Guarantees: a command whose checkpoint is finished is never passed to `execute`; a command
    whose name differs from the checkpoint at its position stops the drive with Diverged (never
    silently continues); the generator is closed whenever the drive returns.
    """
    position = -1
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            try:
                if to_throw is not None:
                    yielded = generator.throw(to_throw)
                else:
                    yielded = generator.send(to_send)
            except StopIteration as stop:
                return Completed(stop.value)
            except Exception as exc:
                return Crashed(describe(exc))
            position += 1
            to_send, to_throw = None, None
            if not isinstance(yielded, Command):
                return Crashed(
                    f"TypeError: a workflow must yield commands from its context, got {yielded!r}"
                )
            recorded = history.get(position)
            if recorded is not None and recorded.name != yielded.name:
                return Diverged(ReplayDivergence(position, recorded.name, yielded.name))
            if recorded is not None and recorded.done:
                result: Resolved | Raised | Suspend = (
                    Raised(recorded.error)
                    if recorded.error is not None
                    else Resolved(recorded.result)
                )
            else:
                result = execute(position, yielded, recorded)
            if isinstance(result, Suspend):
                return Suspended(position, result)
            if isinstance(result, Raised):
                to_throw = StepFailed(yielded.name, result.error)
            else:
                to_send = yielded.decode(result.recorded)
    finally:
        generator.close()
