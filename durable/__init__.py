"""durable: a durable workflow engine that keeps its state in the application's database.

Workflows are generator functions registered with `@workflow(name, version=1)`; they yield
commands built by their context (`ctx.step`, `ctx.transaction`, `ctx.wait_for_signal`,
`ctx.sleep`, `ctx.now`, `ctx.patched`). A step's function may ask `current_step()` for its
idempotency key.
"""

from __future__ import annotations

from typing import Any

from durable.core.commands import TIMED_OUT, WorkflowContext
from durable.core.registry import workflow
from durable.core.step_context import StepInfo, current_step
from durable.errors import (
    DurableError,
    LeaseLost,
    OutcomeUnknown,
    ReplayDivergence,
    RunConflict,
    RunNotFound,
    StepFailed,
    StepInterrupted,
    StepTimedOut,
    WorkflowArgumentsMismatch,
    WorkflowNotRegistered,
)

__all__ = [
    "TIMED_OUT",
    "DurableError",
    "LeaseLost",
    "OutcomeUnknown",
    "ReplayDivergence",
    "RunConflict",
    "RunHandle",
    "RunNotFound",
    "SignalResult",
    "StepFailed",
    "StepInfo",
    "StepInterrupted",
    "StepTimedOut",
    "WorkflowArgumentsMismatch",
    "WorkflowContext",
    "WorkflowNotRegistered",
    "accepted_signal_count",
    "cancel",
    "current_step",
    "database_now",
    "database_now_expression",
    "get",
    "send_signal",
    "start",
    "workflow",
]

_ENGINE_NAMES = {
    "RunHandle",
    "SignalResult",
    "accepted_signal_count",
    "cancel",
    "database_now",
    "database_now_expression",
    "get",
    "send_signal",
    "start",
}


def __getattr__(name: str) -> Any:
    # The engine imports models, which Django allows only once apps are loaded.
    if name in _ENGINE_NAMES:
        from durable import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'durable' has no attribute {name!r}")
