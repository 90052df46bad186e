"""The one-click purchase as straight-line workflow code: its position is the purchase's state."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from durable import TIMED_OUT, WorkflowContext, workflow
from purchases import services
from purchases.states import CANCEL_SIGNAL, CANCELLED, CONFIRMED, FAILED, WORKFLOW


@workflow(WORKFLOW)
def one_click_buy(
    ctx: WorkflowContext, item_id: str, cancel_until: str
) -> Generator[Any, Any, dict[str, Any]]:
    """Wait for a cancel until the window closes; then cancel, or check out exactly once."""
    cancel = yield ctx.wait_for_signal(CANCEL_SIGNAL, until=cancel_until)
    if cancel is not TIMED_OUT:
        yield ctx.transaction(services.record_cancellation, ctx.run_id)
        return {"state": CANCELLED, "item_id": item_id}
    outcome = yield ctx.transaction(services.checkout, ctx.run_id)
    if outcome["ok"]:
        return {"state": CONFIRMED, "item_id": item_id, "order_id": outcome["order_id"]}
    return {"state": FAILED, "item_id": item_id, "reason": outcome["reason"]}
