"""The one-click purchase as straight-line workflow code: its position is the purchase's state."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

from django.conf import settings

from durable import TIMED_OUT, StepFailed, WorkflowContext, workflow
from purchases import notifications, payments, services
from purchases.states import CANCEL_SIGNAL, CANCELLED, CONFIRMED, FAILED, WORKFLOW


@workflow(WORKFLOW)
def one_click_buy(
    ctx: WorkflowContext, item_id: str, cancel_until: str
) -> Generator[Any, Any, dict[str, Any]]:
    """Wait for a cancel until the window closes; then reserve the item, charge the saved card
    once (by the step's idempotency key), and tell the customer how it ended."""
    cancel = yield ctx.wait_for_signal(CANCEL_SIGNAL, until=cancel_until)
    if cancel is not TIMED_OUT:
        yield ctx.transaction(services.record_cancellation, ctx.run_id)
        return (yield from tell(ctx, CANCELLED, item_id))
    order = yield ctx.transaction(services.checkout, ctx.run_id)
    if not order["ok"]:
        return (yield from tell(ctx, FAILED, item_id, reason=order["reason"]))
    payment = yield ctx.step(
        payments.charge, order["charge"],
        timeout=settings.ONECLICK_CHARGE_TIMEOUT_SECONDS,
        # An unknown outcome (timeout, refused, 5xx) is asked again under the same key.
        unknown_for=settings.ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES * 60,
    )  # fmt: skip
    if not payment["paid"]:
        declined = payment["message"]
        yield ctx.transaction(services.record_decline, ctx.run_id, declined)
        return (yield from tell(ctx, FAILED, item_id, reason="payment_declined", message=declined))
    yield ctx.transaction(services.record_payment, ctx.run_id, payment["payment_intent"])
    return (yield from tell(ctx, CONFIRMED, item_id, order_id=order["order_id"]))


def tell(
    ctx: WorkflowContext, state: str, item_id: str, **details: str
) -> Generator[Any, Any, dict[str, Any]]:
    """Email the customer how the purchase ended (at least once), then return that outcome. A
    mail server that keeps failing costs the email, never the outcome."""
    outcome = {"state": state, "item_id": item_id, **details}
    email = yield ctx.transaction(notifications.compose_email, ctx.run_id, outcome)
    if email is not None:
        with contextlib.suppress(StepFailed):
            yield ctx.step(notifications.send_email, email, max_attempts=8)
    return outcome
