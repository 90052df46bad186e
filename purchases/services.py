"""The purchase logic: every write the DRF API, the HTML pages, the admin and the workflow make.

`buy` and `cancel` translate a customer's request into the engine's operations; `checkout` and
`record_cancellation` are the workflow's transactional steps.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

import durable
from durable.models import RunStatus
from purchases import payments
from purchases.keys import KEY_RULE, is_valid_key
from purchases.models import MAX_STOCK, Order, PaymentState, Product, Purchase, SavedCard
from purchases.selectors import PurchaseStatus, pending_status, purchase_status
from purchases.states import CANCEL_SIGNAL, CANCELLED, WORKFLOW, short_state


class PurchaseError(Exception):
    """A request the purchase logic refuses; `field` names the input at fault, if one is."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidKey(PurchaseError):
    field = "key"


class UnknownItem(PurchaseError):
    field = "item_id"


class KeyConflict(PurchaseError):
    """The key was used already for another item."""

    def __init__(self, message: str, purchase: Purchase) -> None:
        super().__init__(message, "item_id")
        self.purchase = purchase


class TooManyPending(PurchaseError):
    """The customer already has ONECLICK_MAX_PENDING_PURCHASES purchases in their window."""


class NoPaymentMethod(PurchaseError):
    """The customer has no saved card to charge: nothing was started."""

    field = "payment_method"


class InvalidPaymentMethod(PurchaseError):
    """The provider refused the payment method given to save."""

    field = "payment_method"


class PaymentsUnavailable(PurchaseError):
    """The payment provider could not be reached (or is not configured): try again later."""


class PurchaseNotFound(PurchaseError):
    """No purchase with this key for this user (another user's key looks the same)."""


@dataclass(frozen=True, slots=True)
class BuyResult:
    purchase: Purchase
    created: bool
    status: PurchaseStatus


@dataclass(frozen=True, slots=True)
class CancelResult:
    """`accepted`: the purchase will end (or has ended) CANCELLED. Otherwise it was too late."""

    accepted: bool
    status: PurchaseStatus


def run_id_for(user_id: int, key: str) -> str:
    """The workflow run id of a user's purchase key (keys are scoped to their user)."""
    return f"{WORKFLOW}/{user_id}/{key}"


def cancel_window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ONECLICK_CANCEL_WINDOW_SECONDS)


def buy(user: AbstractBaseUser, key: str, item_id: Any) -> BuyResult:
    """Start a one-click purchase of `item_id` under `key`, or return the one the key started.

    Guarantees: one purchase (and one workflow run) per user and key, however many concurrent
    calls; the cancel deadline is fixed here; the same key with another item raises KeyConflict.
    A new key while the user has ONECLICK_MAX_PENDING_PURCHASES purchases unfinished raises
    TooManyPending (concurrent calls may each pass the check once).
    """
    if not is_valid_key(key):
        raise InvalidKey(KEY_RULE)
    if not isinstance(item_id, str) or not item_id:
        raise UnknownItem("item_id is required (a product's item id, such as widget-001)")
    # The engine's clock comes with the product (one round trip fewer on PostgreSQL).
    product = (
        Product.objects.filter(item_id=item_id, active=True)
        .annotate(clock=durable.database_now_expression())
        .first()
    )
    card = SavedCard.objects.filter(user=user).first()
    if product is None or card is None or not card.usable or _too_many_pending(user):
        existing = _existing(user, key)
        if existing is not None:
            return _same_purchase(existing, item_id)
        if product is None:
            raise UnknownItem(f"no product with item_id {item_id!r}")
        if card is None or not card.usable:
            raise NoPaymentMethod(
                "Save a card first (PUT /api/payment-method, or your account page): a one-click "
                "purchase charges your saved card."
            )
        raise TooManyPending(
            "You have too many purchases waiting: wait until their cancel windows close."
        )
    # A key used before is found by the insert failing (the run's primary key, the purchase's
    # unique key), not by a read first: a new purchase, the common case, costs no extra query.
    try:
        with transaction.atomic():
            cancel_until = product.clock + cancel_window()
            run_id = run_id_for(user.pk, key)
            # The purchase first: an eager start runs the workflow in this transaction, up to
            # its cancel window (or, with no window, its checkout), and it reads the purchase.
            # The foreign key to the run is checked at commit.
            # The price, the currency and the card are fixed here, at the click.
            purchase = Purchase.objects.create(
                user=user, key=key, product=product, unit_price=product.price,
                cancel_until=cancel_until, run_id=run_id, currency=settings.ONECLICK_CURRENCY,
                customer_id=card.customer_id, payment_method_id=card.payment_method_id,
                card_brand=card.brand, card_last4=card.last4,
            )  # fmt: skip
            run, _ = durable.start(
                run_id, WORKFLOW, product.item_id, cancel_until.isoformat(),
                eager=settings.ONECLICK_EAGER_START,
            )  # fmt: skip
    except (IntegrityError, durable.RunConflict):
        # The key was used before (a retry, a double click, a concurrent request that won the
        # race): answer with its purchase.
        existing = _existing(user, key)
        if existing is None:
            raise
        return _same_purchase(existing, item_id)
    purchase.product = product
    if not settings.ONECLICK_EAGER_START:
        # Only a worker can have moved the run since: still pending as far as this answer goes.
        return BuyResult(purchase, True, pending_status(purchase))
    # Started eagerly: the run was advanced in the transaction, and its handle says where it is.
    if run.status != RunStatus.WAITING:
        # Not parked at its window (there was none): checkout wrote the purchase's payment.
        purchase.refresh_from_db(fields=["payment_state", "payment_message", "cancelled_at"])
    return BuyResult(purchase, True, purchase_status(purchase, run=run))


def _too_many_pending(user: AbstractBaseUser) -> bool:
    limit = settings.ONECLICK_MAX_PENDING_PURCHASES
    if not limit:
        return False
    return Purchase.objects.filter(user=user, run__finished_at__isnull=True).count() >= limit


def _existing(user: AbstractBaseUser, key: str) -> Purchase | None:
    return Purchase.objects.select_related("product", "run").filter(user=user, key=key).first()


def _same_purchase(purchase: Purchase, item_id: str) -> BuyResult:
    if purchase.product.item_id != item_id:
        raise KeyConflict(
            f"key {purchase.key!r} was already used to buy {purchase.product.item_id!r}",
            purchase,
        )
    return BuyResult(purchase, False, purchase_status(purchase))


def get_purchase(user: AbstractBaseUser, key: str) -> Purchase:
    """The user's purchase with this key; PurchaseNotFound otherwise (also for a bad key)."""
    if not is_valid_key(key):
        raise InvalidKey(KEY_RULE)
    purchase = _existing(user, key)
    if purchase is None:
        raise PurchaseNotFound(f"no purchase with key {key!r}")
    return purchase


def cancel(user: AbstractBaseUser, key: str) -> CancelResult:
    """Ask to cancel the user's purchase `key`.

    Accepted (and then the purchase ends CANCELLED) while the window is open; asking again after
    an accepted cancel is accepted again. Refused once the window has closed (the purchase then
    ends CONFIRMED, or FAILED if the item ran out). The decision serialises with the workflow's
    timeout on the run's row, so the answer is never contradicted by the outcome.
    """
    purchase = get_purchase(user, key)
    run_id = purchase.run_id
    ended = purchase_status(purchase)
    if ended.result is not None:
        # Asking again after the end is answered by the outcome, which outlives the workflow
        # signals (retention prunes those).
        return CancelResult(ended.state == short_state(CANCELLED), ended)
    with transaction.atomic():
        # Cancels of one purchase queue here, so that a refusal (window closed, no cancel
        # accepted) cannot overlook a concurrent cancel that checked the clock just before the
        # deadline and is still sending its workflow signal (a double click on Cancel).
        # NO KEY UPDATE, not UPDATE: a worker confirming the purchase holds the run's row and
        # its new order's foreign key needs a key-share lock on this row; the two lock modes are
        # compatible, so that worker is not made to wait for this cancel, which is about to wait
        # for the run's row (a deadlock on PostgreSQL).
        Purchase.objects.select_for_update(no_key=True).filter(pk=purchase.pk).exists()
        if durable.accepted_signal_count(run_id, CANCEL_SIGNAL):
            accepted = True
        # Past the deadline no signal is sent at all: the workflow's wait times out by itself.
        elif durable.database_now() >= purchase.cancel_until:
            accepted = False
        else:
            accepted = durable.send_signal(run_id, CANCEL_SIGNAL, {"user_id": user.pk}).accepted
    return CancelResult(accepted, purchase_status(purchase, refresh=True))


# --- the workflow's steps -------------------------------------------------------------------------


def new_order_number() -> str:
    """A fresh order number; random, so numbers are never reused even if rows are deleted."""
    return f"OC-{secrets.token_hex(6).upper()}"


def checkout(run_id: str) -> dict[str, Any]:
    """Take one unit of stock and create the order awaiting payment (the purchase's payment is
    then charging), inside the step's transaction; returns the order number and `charge`, the
    payment to ask for (payments.charge's request: the card, price and currency of the click).

    Never oversells: the stock decrement is conditional in one UPDATE. Out of stock returns
    `{"ok": False, "reason": "out_of_stock"}` and creates nothing. The order copies the price
    fixed at purchase time. No purchase for `run_id` raises Purchase.DoesNotExist."""
    # Plain statements, kept by measurement: this runs once per purchase inside the run's
    # transaction (on SQLite, while the write lock is held), and the same two statements
    # written in the ORM (a conditional F() update with a subquery and a create) lowered the
    # engine's end-to-end throughput by more than 10% on both databases (issue 16's A/B).
    purchases, products, orders = (
        connection.ops.quote_name(m._meta.db_table) for m in (Purchase, Product, Order)
    )
    order_number = new_order_number()
    created_at = Order._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {products} SET stock = stock - 1 WHERE stock >= 1 "
            f"AND id = (SELECT product_id FROM {purchases} WHERE run_id = %s)",
            [run_id],
        )
        if cursor.rowcount != 1:
            if not Purchase.objects.filter(run_id=run_id).exists():
                raise Purchase.DoesNotExist(f"no purchase for run {run_id!r}")
            return {"ok": False, "reason": "out_of_stock"}
        cursor.execute(
            f"INSERT INTO {orders} (order_number, purchase_id, price_paid, created_at) "
            f"SELECT %s, id, unit_price, %s FROM {purchases} WHERE run_id = %s",
            [order_number, created_at, run_id],
        )
        # The payment is charging now, and what to charge comes back in the same statement:
        # the charge step then needs no database (it may run in a thread of its own).
        cursor.execute(
            f"UPDATE {purchases} SET payment_state = %s WHERE run_id = %s RETURNING "
            f"{connection.ops.quote_name('key')}, user_id, customer_id, payment_method_id, "
            "unit_price, currency",
            [PaymentState.CHARGING.value, run_id],
        )
        key, user_id, customer, payment_method, price, currency = cursor.fetchone()
    charge = {
        "customer": customer, "payment_method": payment_method, "currency": currency,
        "amount": payments.minor_units(Decimal(str(price)), currency),
        "metadata": {"purchase": key, "user_id": str(user_id), "order_number": order_number},
    }  # fmt: skip
    return {"ok": True, "order_id": order_number, "charge": charge}


def record_cancellation(run_id: str) -> None:
    """Note when the purchase was cancelled (the cancel tail; nothing was reserved)."""
    Purchase.objects.filter(run_id=run_id).update(cancelled_at=timezone.now())


def add_stock(product: Product, units: int) -> bool:
    """Add `units` (> 0) to the product's stock as it is in the database now (sales meanwhile are
    kept). Refused (False, nothing written) if the stock would pass MAX_STOCK."""
    added = Product.objects.filter(pk=product.pk, stock__lte=MAX_STOCK - units).update(
        stock=F("stock") + units
    )
    return added == 1


def record_payment(run_id: str, payment_intent: str) -> None:
    """The charge went through: note its PaymentIntent on the purchase, which is paid."""
    Purchase.objects.filter(run_id=run_id).update(
        payment_state=PaymentState.PAID, payment_intent_id=payment_intent, paid_at=timezone.now()
    )


def record_decline(run_id: str, message: str) -> None:
    """The card was declined: the order goes and its unit goes back to stock (unless the stock
    was filled to MAX_STOCK meanwhile: the unit is then dropped, never a write past the bound),
    and the purchase keeps the provider's message. Nothing was charged."""
    purchase = Purchase.objects.get(run_id=run_id)
    if Order.objects.filter(purchase=purchase).delete()[0]:
        Product.objects.filter(pk=purchase.product_id, stock__lt=MAX_STOCK).update(
            stock=F("stock") + 1
        )
    Purchase.objects.filter(pk=purchase.pk).update(
        payment_state=PaymentState.DECLINED, payment_message=message
    )


# --- the saved card -------------------------------------------------------------------------------


def save_payment_method(user: AbstractBaseUser, payment_method: Any) -> SavedCard:
    """Attach `payment_method` (a provider PaymentMethod id, such as pm_card_visa in test mode)
    to the user's provider customer, made on first use, and save it as the card one-click
    purchases charge. InvalidPaymentMethod when it is missing or refused; PaymentsUnavailable
    when the provider cannot be reached (nothing is changed then)."""
    if not isinstance(payment_method, str) or not payment_method.strip():
        raise InvalidPaymentMethod("payment_method is required (a PaymentMethod id, pm_...)")
    saved = SavedCard.objects.filter(user=user).first()
    try:
        card = payments.attach_card(
            saved.customer_id if saved else "", payment_method.strip(),
            user_id=user.pk, email=getattr(user, "email", "") or "",
        )  # fmt: skip
    except payments.InvalidPaymentMethod as exc:
        raise InvalidPaymentMethod(f"payment_method {payment_method!r}: {exc}") from exc
    except payments.ProviderUnavailable as exc:
        raise PaymentsUnavailable(
            f"The payment provider is unavailable, nothing was changed: {exc}"
        ) from exc
    saved, _ = SavedCard.objects.update_or_create(
        user=user,
        defaults={
            "customer_id": card.customer_id, "payment_method_id": card.payment_method_id,
            "brand": card.brand, "last4": card.last4,
        },
    )  # fmt: skip
    return saved
