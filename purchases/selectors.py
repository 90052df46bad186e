"""Reads: a purchase's status as the API and the pages show it, and the lists of purchases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet

from durable import StepFailed
from durable.models import CheckpointStatus, RunStatus, StepCheckpoint
from purchases.models import Order, PaymentState, Product, Purchase, SavedCard
from purchases.states import CANCELLED, CONFIRMED, FAILED, short_state

DELAYED_MESSAGE = (
    "Your purchase is delayed by maintenance on our side. Nothing is lost: it will complete as "
    "you decided, and a cancel made inside the window is honoured."
)
PROVIDER_MESSAGE = (
    "Our payment provider has not answered yet. We keep asking, and your card is charged at "
    "most once: your purchase completes as soon as it answers."
)


class RunState(Protocol):
    """What a purchase's status reads of its run: a WorkflowRun, or durable's RunHandle."""

    @property
    def status(self) -> str: ...

    @property
    def result(self) -> Any: ...

    @property
    def error(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PurchaseStatus:
    """`status` is "pending" until the workflow ends, then "done" with `result`. `delayed`: a
    pending purchase whose workflow is blocked (the deployed code cannot continue it yet)."""

    key: str
    item_id: str
    status: str
    cancel_until: Any
    result: dict[str, Any] | None
    delayed: bool = False
    # The payment: PaymentState's value, and whether the provider's answer is awaited (an
    # attempt's outcome was unknown: it is being asked again under the same key).
    payment_state: str = ""
    waiting_on_provider: bool = False

    @property
    def message(self) -> str:
        """What to tell the customer about a delayed purchase ("" otherwise)."""
        if self.waiting_on_provider:
            return PROVIDER_MESSAGE
        return DELAYED_MESSAGE if self.delayed else ""

    @property
    def state(self) -> str:
        """PENDING, or the final state without its prefix: CONFIRMED, CANCELLED, FAILED."""
        if self.result is None:
            return "PENDING"
        return short_state(str(self.result["state"]))

    def as_json(self) -> dict[str, Any]:
        """The body of `GET /api/status/<key>`."""
        if self.result is None:
            body = {
                "key": self.key,
                "status": "pending",
                "item_id": self.item_id,
                "cancel_until": self.cancel_until.isoformat().replace("+00:00", "Z"),
            }
            if self.payment_state:
                body["payment_state"] = self.payment_state
            if self.waiting_on_provider:
                body |= {"waiting_on_provider": True, "message": self.message}
            elif self.delayed:
                body |= {"delayed": True, "message": self.message}
            return body
        return {"key": self.key, "status": "done", "result": self.result}


def pending_status(purchase: Purchase) -> PurchaseStatus:
    """The status of a purchase whose workflow is known not to have ended (no query)."""
    return PurchaseStatus(
        purchase.key, purchase.product.item_id, "pending", purchase.cancel_until, None
    )


def purchase_status(
    purchase: Purchase, *, refresh: bool = False, run: RunState | None = None
) -> PurchaseStatus:
    """The purchase's status, derived from its workflow run (never stored by hand): `run` as
    given (the handle `durable.start` returned), else the purchase's run (re-read if
    `refresh`)."""
    if run is None:
        run = purchase.run
        if refresh:
            run.refresh_from_db()
            purchase.refresh_from_db(fields=["payment_state", "payment_message", "cancelled_at"])
    item_id = purchase.product.item_id
    result: dict[str, Any] | None = None
    if run.status == RunStatus.SUCCEEDED:
        result = dict(run.result)
    elif run.status == RunStatus.FAILED:
        result = {"state": FAILED, "item_id": item_id, "reason": failure_reason(run.error)}
    elif run.status == RunStatus.CANCELLED:
        # Stopped by an operator: if checkout had committed (and nothing is left to charge),
        # the order stands.
        order = _order(purchase)
        if order is not None and purchase.payment_state != PaymentState.CHARGING:
            result = {"state": CONFIRMED, "item_id": item_id, "order_id": order.order_number}
        else:
            result = {"state": CANCELLED, "item_id": item_id}
    else:
        result = decided_result(purchase)
    blocked = run.status == RunStatus.BLOCKED
    charging = result is None and purchase.payment_state == PaymentState.CHARGING
    return PurchaseStatus(
        purchase.key, item_id, "done" if result else "pending", purchase.cancel_until, result,
        delayed=blocked, payment_state=purchase.payment_state,
        waiting_on_provider=charging and (blocked or _charge_retrying(purchase.run_id)),
    )  # fmt: skip


def decided_result(purchase: Purchase) -> dict[str, Any] | None:
    """The result the purchase's run is about to return, once its outcome is written (paid,
    declined or cancelled) and only the email is left to send; None before."""
    item_id = purchase.product.item_id
    if purchase.payment_state == PaymentState.PAID:
        order = _order(purchase)
        return {
            "state": CONFIRMED,
            "item_id": item_id,
            "order_id": order.order_number if order else "",
        }
    if purchase.payment_state == PaymentState.DECLINED:
        return {
            "state": FAILED, "item_id": item_id, "reason": "payment_declined",
            "message": purchase.payment_message,
        }  # fmt: skip
    if purchase.cancelled_at is not None:
        return {"state": CANCELLED, "item_id": item_id}
    return None


def _order(purchase: Purchase) -> Order | None:
    try:
        return purchase.order
    except Order.DoesNotExist:
        return None


def _charge_retrying(run_id: str) -> bool:
    """Whether the run's charge has had an attempt without an answer (since an operator's last
    resume) and has not answered since. The attempt in flight counts as unknown until it answers
    (the engine presumes so), so it takes an error recorded or a second unknown attempt."""
    return (
        StepCheckpoint.objects.filter(
            run_id=run_id, name="charge", status=CheckpointStatus.PENDING, unknown_attempts__gt=0
        )
        .filter(~Q(error="") | Q(unknown_attempts__gte=2))
        .exists()
    )


def failure_reason(error: str) -> str:
    """Why a purchase whose run failed did not go through, as a person reads it: the step that
    failed after its last attempt (`checkout_failed`), or `internal_error` when the run failed
    outside any step (a bug in the workflow's own code). Transient database errors never get
    here: the engine retries them."""
    step = StepFailed.step_named_by(error)
    return f"{step}_failed" if step else "internal_error"


def purchases_of(user: AbstractBaseUser) -> QuerySet[Purchase]:
    """The user's purchases, newest first, with what their status needs."""
    return Purchase.objects.filter(user=user).select_related("product", "run", "order")


def active_products() -> QuerySet[Product]:
    """The catalog: active products by name."""
    return Product.objects.filter(active=True).order_by("name")


def saved_card(user: AbstractBaseUser) -> SavedCard | None:
    """The card the user's one-click purchases charge, if they saved one."""
    card = SavedCard.objects.filter(user=user).first()
    return card if card is not None and card.usable else None
