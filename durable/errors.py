"""Exceptions of the durable engine."""

from __future__ import annotations

import re


class DurableError(Exception):
    """Base class of the engine's errors."""


class WorkflowNotRegistered(DurableError):
    """No workflow is registered under the name asked for."""


class RunConflict(DurableError):
    """A run with this id exists already, for another workflow or other arguments."""


class RunNotFound(DurableError):
    """No run has this id."""


class LeaseLost(DurableError):
    """This executor no longer holds the run's lease: it must stop without writing."""


class StepFailed(DurableError):
    """A step failed after its last attempt; raised inside the workflow at the step's yield.

    Live execution and replay raise the same exception with the same text, so a workflow that
    catches it behaves the same both times.
    """

    def __init__(self, step_name: str, error: str) -> None:
        super().__init__(f"step {step_name!r} failed: {error}")
        self.step_name = step_name
        self.error = error

    @staticmethod
    def step_named_by(run_error: str) -> str | None:
        """The step whose final failure ended a run, read from the run's recorded error (the
        workflow let StepFailed propagate); None when the run failed for another reason."""
        match = _RECORDED_STEP_FAILURE.match(run_error)
        return match["step"] if match else None


# How a run that ended on StepFailed records its error (`durable.core.replay.describe`).
_RECORDED_STEP_FAILURE = re.compile(r"^StepFailed: step '(?P<step>[^']+)' failed: ")


class OutcomeUnknown(DurableError):
    """Raised by a plain step's function that cannot tell whether its effect happened (a
    timeout, a refused connection, a 5xx or 429 answer). With the step's `unknown_for` set, the
    attempt does not use up `max_attempts`: the step is tried again, under the same idempotency
    key, until `unknown_for` seconds have passed, then its run is blocked for an operator. Without
    it, a failed attempt like any other exception."""


class StepInterrupted(DurableError):
    """A plain step's attempt ended without an outcome: its worker died (or lost the run's
    lease) while the step ran. Counted as a failed attempt."""


class StepTimedOut(DurableError):
    """A plain step's attempt outlasted the step's `timeout`: its late answer is ignored and it
    counts as a failed attempt (the retry starts only once the late call has ended)."""


class WorkflowArgumentsMismatch(DurableError):
    """A run's stored arguments no longer bind to its workflow function's signature."""


class ReplayDivergence(DurableError):
    """Replay met a command other than the one recorded at that position (kind or name), or the
    workflow ended or stopped before the end of its recorded history: the code changed.

    `recorded` and `found` are the two commands' names (`found` is "" when the workflow no longer
    reaches that position); `recorded_as` and `found_as` say it in words for the message."""

    def __init__(
        self, position: int, recorded: str, found: str, *, recorded_as: str = "", found_as: str = ""
    ) -> None:
        recorded_as = recorded_as or repr(recorded)
        found_as = found_as or f"yields {found!r}"
        super().__init__(
            f"replay diverged at position {position}: the history records {recorded_as} "
            f"but the workflow now {found_as}"
        )
        self.position = position
        self.recorded = recorded
        self.found = found
