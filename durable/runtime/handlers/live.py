"""What a handler is given: one command met live, with the run's transaction and the command's
checkpoint, and the two ways its checkpoint is written (pending, finished)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from durable.core.commands import Command
from durable.core.replay import Recorded
from durable.models import CheckpointStatus
from durable.persistence import store
from durable.runtime.run_transaction import RunTransaction

C = TypeVar("C", bound=Command)


def to_json(value: Any) -> Any:
    """The value exactly as it will come back from the database, so live and replay agree."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


@dataclass(frozen=True, slots=True)
class UnknownOutcomes:
    """A plain step's attempts whose outcome is unknown, and the database's time of the first
    of them (the start of the `unknown_for` horizon; None before any, or after a resume)."""

    attempts: int = 0
    since: dt.datetime | None = None

    @classmethod
    def of(cls, recorded: Recorded | None) -> UnknownOutcomes:
        """As recorded on the step's checkpoint (none without one)."""
        if recorded is None:
            return NO_UNKNOWN_OUTCOMES
        return cls(recorded.unknown_attempts, recorded.unknown_since)

    def one_more(self, now: dt.datetime) -> UnknownOutcomes:
        """With one more unknown attempt, made at `now` (which starts the horizon if none is)."""
        return UnknownOutcomes(self.attempts + 1, self.since or now)

    def one_fewer(self) -> UnknownOutcomes:
        """Without the last one (an attempt presumed unknown that answered): no horizon if it
        was the only one."""
        attempts = max(self.attempts - 1, 0)
        return UnknownOutcomes(attempts, self.since if attempts else None)


NO_UNKNOWN_OUTCOMES: Final = UnknownOutcomes()


@dataclass(slots=True)
class LiveCommand(Generic[C]):
    """`command`, at `position` of the run `tx` holds, with no finished checkpoint: `recorded`
    is its pending one (a wait still open, a step between attempts), if any."""

    tx: RunTransaction
    position: int
    command: C
    recorded: Recorded | None
    started_at: dt.datetime = field(default_factory=timezone.now)
    # Whether a checkpoint row exists, so that `finish` completes it rather than inserting one.
    _has_row: bool = field(init=False)

    def __post_init__(self) -> None:
        self._has_row = self.recorded is not None

    def elapsed(self) -> float:
        """Seconds since the command was met."""
        return (timezone.now() - self.started_at).total_seconds()

    def save(
        self,
        status: str,
        *,
        attempts: int,
        error: str = "",
        deadline: dt.datetime | None = None,
        unknown: UnknownOutcomes = NO_UNKNOWN_OUTCOMES,
    ) -> None:
        """Insert or update the command's checkpoint as `status` (inside the fenced group)."""
        self._write(
            status, None, attempts=attempts, error=error, deadline=deadline, unknown=unknown
        )
        self._has_row = True

    def finish(
        self,
        result: Any,
        *,
        attempts: int = 1,
        deadline: dt.datetime | None = None,
        unknown: UnknownOutcomes = NO_UNKNOWN_OUTCOMES,
    ) -> None:
        """Record the command's result (inside the fenced group): one INSERT when it has no
        checkpoint yet, the hot path; else its checkpoint is completed."""
        self._write(
            CheckpointStatus.DONE, result, attempts=attempts, deadline=deadline, unknown=unknown
        )

    def _write(
        self,
        status: str,
        result: Any,
        *,
        attempts: int,
        error: str = "",
        deadline: dt.datetime | None = None,
        unknown: UnknownOutcomes = NO_UNKNOWN_OUTCOMES,
    ) -> None:
        if not self._has_row:
            # The lease makes this the run's only writer: no row can have appeared meanwhile.
            store.insert_checkpoint(
                self.tx.run_id, self.position, name=self.command.name, kind=self.command.kind,
                status=status, result=result, error=error, attempts=attempts, deadline=deadline,
                started_at=self.started_at, unknown_attempts=unknown.attempts,
                unknown_since=unknown.since,
            )  # fmt: skip
        else:
            store.save_checkpoint(
                self.tx.run_id, self.position, name=self.command.name, kind=self.command.kind,
                status=status, result=result, error=error, attempts=attempts, deadline=deadline,
                unknown_attempts=unknown.attempts, unknown_since=unknown.since,
            )  # fmt: skip
        # As `store.load_history` would read it back (a JSON column's value round-tripped).
        self.tx.remember(
            self.position,
            store.recorded(
                self.command.name, self.command.kind, status,
                None if result is None else to_json(result), error, attempts, deadline,
                unknown_attempts=unknown.attempts, unknown_since=unknown.since,
            ),
        )  # fmt: skip
