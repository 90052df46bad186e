"""The durable clock and patch markers: a value decided once, live, and recorded for replay."""

from __future__ import annotations

from durable.core.commands import Now, Patch
from durable.core.replay import Resolved
from durable.runtime.handlers.live import LiveCommand


def now(live: LiveCommand[Now]) -> Resolved:
    """The database's clock, as the run's transaction carries it."""
    live.tx.begin()
    result = live.tx.now().isoformat()
    live.finish(result)
    return Resolved(result)


def patch(live: LiveCommand[Patch]) -> Resolved:
    """Reached live: this run takes the patched branch, and its replays must too."""
    live.tx.begin()
    live.finish(True)
    return Resolved(True)
