"""One handler per kind of command, found by the command's type: a new command is its handler
and one entry of `HANDLERS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable.commands import Command, Now, Patch, Sleep, Step, TransactionStep, WaitForSignal
from durable.handlers import markers, steps, timers
from durable.handlers.live import LiveCommand
from durable.replay import Raised, Recorded, Resolved, Suspend
from durable.run_transaction import RunTransaction

Handler = Callable[[LiveCommand[Any]], Resolved | Raised | Suspend]

HANDLERS: dict[type[Command], Handler] = {
    Step: steps.run_step,
    TransactionStep: steps.run_transaction_step,
    WaitForSignal: timers.wait_for_signal,
    Sleep: timers.sleep,
    Now: markers.now,
    Patch: markers.patch,
}


def execute(
    tx: RunTransaction, position: int, command: Command, recorded: Recorded | None
) -> Resolved | Raised | Suspend:
    """Run `command`, which has no finished checkpoint at `position` of the run `tx` holds, with
    the handler of its type (or of its nearest base class that has one)."""
    for kind in type(command).__mro__:
        handler = HANDLERS.get(kind)
        if handler is not None:
            return handler(LiveCommand(tx, position, command, recorded))
    raise TypeError(f"unknown command {command!r}")
