"""A tiny workflow for the operations tests: wait for "go" (or a timeout), then one step."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from durable import TIMED_OUT, WorkflowContext, workflow


def shout(word: str) -> str:
    return word.upper()


@workflow("ops_wait_then_shout")
def wait_then_shout(
    ctx: WorkflowContext, word: str, timeout: float
) -> Generator[Any, Any, dict[str, Any]]:
    """Wait up to `timeout` seconds for the workflow signal "go", then shout `word` in a step."""
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    loud = yield ctx.step(shout, word)
    return {"word": loud, "signalled": go is not TIMED_OUT}
