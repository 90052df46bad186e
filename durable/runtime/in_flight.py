"""A plain step's call in flight in the step pool (durable/runtime/step_pool.py), and its answer:
what the pool hands back to the executor, which records it and advances the run on."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from durable.core.replay import Recorded
from durable.persistence import store


@dataclass(frozen=True, slots=True)
class Answer:
    """What a call came back with: its value (JSON, as recorded) or its exception."""

    attempt: int
    seconds: float
    value: Any = None
    error: Exception | None = None


@dataclass(slots=True)
class InFlightCall:
    """A plain step's call handed to the pool, with what its run's advance needs afterwards."""

    run_id: str
    owner: str
    ttl: dt.timedelta
    leased: store.LeasedRun
    position: int
    attempt: int
    # The run's checkpoints once the attempt committed (None: read them again), so that the
    # completer replays without reading them.
    history: dict[int, Recorded] | None = None
    started: float = field(default_factory=time.monotonic)
    renewed_at: float = field(default_factory=time.monotonic)
    lost: bool = False
    # Its answer is being recorded: a commit may release its run's lease (the run ended or
    # waits) before the completer settles it, which is not a lost lease.
    recording: bool = False

    def lease_left(self) -> float:
        """Seconds the lease is known to last (from its last renewal)."""
        return self.ttl.total_seconds() - (time.monotonic() - self.renewed_at)
