"""One handler per kind of command, found by the command's type: a new command is its handler
and one entry of `HANDLERS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable.core.commands import Command, Now, Patch, Sleep, Step, TransactionStep, WaitForSignal
from durable.core.replay import Raised, Recorded, Resolved, Suspend
from durable.runtime.handlers import markers, steps, waits
from durable.runtime.handlers.live import LiveCommand
from durable.runtime.run_transaction import RunTransaction

Handler = Callable[[LiveCommand[Any]], Resolved | Raised | Suspend]

HANDLERS: dict[type[Command], Handler] = {
    Step: steps.run_step,
    TransactionStep: steps.run_transaction_step,
    WaitForSignal: waits.wait_for_signal,
    Sleep: waits.sleep,
    Now: markers.now,
    Patch: markers.patch,
}


# Commands whose handler commits the work so far before it runs (a plain step calls the outside
# world, and nothing may be held open meanwhile); every other handler only touches the database.
COMMIT_FIRST: frozenset[type[Command]] = frozenset({Step})


def kind_of(command: Command) -> type[Command]:
    """The command type whose handler runs `command`: its own, or its nearest base class's."""
    for kind in type(command).__mro__:
        if kind in HANDLERS:
            return kind
    raise TypeError(f"unknown command {command!r}")


def commits_first(command: Command) -> bool:
    """Whether running `command` commits the run's transaction first."""
    return kind_of(command) in COMMIT_FIRST


def execute(
    tx: RunTransaction, position: int, command: Command, recorded: Recorded | None
) -> Resolved | Raised | Suspend:
    """Run `command`, which has no finished checkpoint at `position` of the run `tx` holds, with
    the handler of its type (or of its nearest base class that has one)."""
    return HANDLERS[kind_of(command)](LiveCommand(tx, position, command, recorded))
