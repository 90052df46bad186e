"""Changed code of the purchase workflow, deployed in a process given PURCHASE_CHANGE (through
DURABLE_WORKFLOW_MODULES), in place of the one_click_buy v1 that purchases/workflows.py holds."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

from durable import TIMED_OUT, WorkflowContext
from purchases import services, workflows
from tests.durable.deploy_workflows import deploy


def step_before_the_wait(
    ctx: WorkflowContext, item_id: str, cancel_until: str
) -> Generator[Any, Any, Any]:
    """Incompatible with purchases in flight: a step inserted before the cancel window."""
    yield ctx.step(services.new_order_number)
    cancel = yield ctx.wait_for_signal(workflows.CANCEL_SIGNAL, until=cancel_until)
    if cancel is not TIMED_OUT:
        yield ctx.transaction(services.record_cancellation, ctx.run_id)
        return {"state": workflows.CANCELLED, "item_id": item_id}
    outcome = yield ctx.transaction(services.checkout, ctx.run_id)
    return {"state": workflows.CONFIRMED, "item_id": item_id, "order_id": outcome["order_id"]}


CHANGES = {"step_before_the_wait": step_before_the_wait}

if os.environ.get("PURCHASE_CHANGE"):
    deploy("one_click_buy", CHANGES[os.environ["PURCHASE_CHANGE"]])
