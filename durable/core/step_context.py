"""What a step's function can learn about the step it runs in: above all, its idempotency key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepInfo:
    """The step whose function is running. `attempt` counts from 1."""

    run_id: str
    position: int
    name: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this step, in every process and on every replay, and
        different for every other step of any run: pass it to an external API (a payment
        provider's Idempotency-Key) so that a step run twice has its effect once."""
        return f"{self.run_id}:{self.position}"


_current: ContextVar[StepInfo | None] = ContextVar("durable_current_step", default=None)


def current_step() -> StepInfo:
    """The step whose function is running in this context (thread or task); RuntimeError when
    called outside a step's function."""
    step = _current.get()
    if step is None:
        raise RuntimeError("durable.current_step() is only known inside a step's function")
    return step


@contextlib.contextmanager
def running(step: StepInfo) -> Iterator[None]:
    """Make `step` the current step for the block."""
    token = _current.set(step)
    try:
        yield
    finally:
        _current.reset(token)
