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

from durable.core.commands import Command, Patch
from durable.errors import ReplayDivergence, StepFailed


@dataclass(frozen=True, slots=True)
class Recorded:
    """A checkpoint as replay sees it. `done` False means the command started but has no result
    yet (a wait that is still open, a step between retries). `kind` is the command's kind
    ("step", "wait", "patch"...); empty means unknown, and only the name is compared.
    `error`: a finished command's final error, or a pending step's last failed attempt's.
    `unknown_attempts` and `unknown_since`: a plain step's attempts whose outcome is unknown, and
    the start of their horizon (see `WorkflowContext.step`'s `unknown_for`)."""

    name: str
    done: bool
    result: Any = None
    error: str | None = None
    attempts: int = 0
    deadline: dt.datetime | None = None
    kind: str = ""
    unknown_attempts: int = 0
    unknown_since: dt.datetime | None = None


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
    """`execute` suspended the run: nothing more can happen before `wake_at` (or a signal).
    `blocks`: nothing more can happen before an operator resumes it, for `reason`."""

    wake_at: dt.datetime | None
    reason: str
    blocks: bool = False


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

    Guarantees: a command whose checkpoint is finished is never passed to `execute`, nor is any
    command while recorded history lies beyond its position; a command whose kind or name
    differs from the checkpoint at its position, or an end (return, exception) before the end of
    the recorded history, stops the drive with Diverged (never silently continues); a patch
    marker is True where it is recorded or reached live, False (taking no position) where the
    history holds another command; the generator is closed whenever the drive returns.
    """
    position = 0  # the position the next command takes
    last_recorded = max(history, default=-1)
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
                ended = _ended_early(history, position, last_recorded, "ends")
                return ended or Completed(stop.value)
            except Exception as exc:
                error = describe(exc)
                ended = _ended_early(history, position, last_recorded, f"raises {error}")
                return ended or Crashed(error)
            to_send, to_throw = None, None
            if not isinstance(yielded, Command):
                return Crashed(
                    f"TypeError: a workflow must yield commands from its context, got {yielded!r}"
                )
            recorded = history.get(position)
            if isinstance(yielded, Patch) and recorded is not None and not _same(recorded, yielded):
                # The run went past this point on code without the patch: the old branch, and
                # the marker takes no position.
                to_send = False
                continue
            if recorded is not None and not _same(recorded, yielded):
                return Diverged(
                    ReplayDivergence(
                        position,
                        recorded.name,
                        yielded.name,
                        recorded_as=_what(recorded),
                        found_as=f"yields {_what(yielded)}",
                    )
                )
            if recorded is not None and recorded.done:
                result: Resolved | Raised | Suspend = (
                    Raised(recorded.error)
                    if recorded.error is not None
                    else Resolved(recorded.result)
                )
            else:
                pending = f"stops at {_what(yielded)} (position {position}, unfinished)"
                beyond = _ended_early(history, position + 1, last_recorded, pending)
                if beyond is not None:
                    return beyond
                result = execute(position, yielded, recorded)
            if isinstance(result, Suspend):
                return Suspended(position, result)
            if isinstance(result, Raised):
                to_throw = StepFailed(yielded.name, result.error)
            else:
                to_send = yielded.decode(result.recorded)
            position += 1
    finally:
        generator.close()


def _same(recorded: Recorded, command: Command) -> bool:
    return recorded.name == command.name and (not recorded.kind or recorded.kind == command.kind)


def _what(command: Recorded | Command) -> str:
    return f"{command.kind or 'command'} {command.name!r}"


def _ended_early(
    history: Mapping[int, Recorded], position: int, last_recorded: int, found_as: str
) -> Diverged | None:
    """Diverged when history is recorded at or beyond `position`, which the code no longer
    reaches: it `found_as` instead (ends, raises, stops at a command without a result)."""
    if position > last_recorded:
        return None
    beyond = min(p for p in history if p >= position)
    recorded = history[beyond]
    return Diverged(
        ReplayDivergence(beyond, recorded.name, "", recorded_as=_what(recorded), found_as=found_as)
    )
