"""Workflows of the benchmarks' own, registered in the bench process and, through
DURABLE_WORKFLOW_MODULES=bench.workflows, in the cluster's workers."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from durable import WorkflowContext, workflow


def outside_call(seconds: float) -> str:
    """A call to the outside world that answers after `seconds` (the GIL is free meanwhile), as
    a payment provider's answer does."""
    time.sleep(seconds)
    return "answered"


@workflow("bench_slow_step")
def bench_slow_step(ctx: WorkflowContext, seconds: float) -> Generator[Any, Any, Any]:
    """One plain step that waits `seconds` (bench/peers/dbos_oneclick.py's `slow_step`)."""
    answer = yield ctx.step(outside_call, seconds)
    return {"answer": answer}
