"""The demo catalog and demo user that `make run` loads."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from purchases import payments, services
from purchases.models import Product, SavedCard

DEMO_PRODUCTS = [
    ("widget-001", "Widget", Decimal("9.99"), 100),
    ("gadget-002", "Gadget", Decimal("24.50"), 50),
    ("gizmo-003", "Gizmo", Decimal("4.25"), 200),
    ("doohickey-004", "Doohickey", Decimal("99.00"), 5),
    ("sprocket-005", "Sprocket", Decimal("1.75"), 1000),
]
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
# Where the demo's purchase emails go (`make run` prints them on the console).
DEMO_EMAIL = "demo@example.com"
# Stripe's test PaymentMethod for a Visa that charges (test mode and local providers only).
DEMO_CARD = "pm_card_visa"


def seed_demo(*, force: bool = False) -> list[str]:
    """Create the demo products (leaving existing ones, and their stock, alone) and the demo user
    with a saved Visa (at the configured provider: `make run`'s local one).

    The demo user has a known password, so with DEBUG off it is only created with `force`."""
    report = []
    with transaction.atomic():
        for item_id, name, price, stock in DEMO_PRODUCTS:
            _, created = Product.objects.get_or_create(
                item_id=item_id, defaults={"name": name, "price": price, "stock": stock}
            )
            report.append(f"product {item_id}: {'created' if created else 'exists'}")
        if not settings.DEBUG and not force:
            report.append("demo user: skipped (DEBUG is off; pass --force to create it anyway)")
            return report
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": DEMO_EMAIL}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        report.append(f"demo user {DEMO_USERNAME!r}: {'created' if created else 'exists'}")
    # After the commit: no transaction stays open while the provider is called.
    report.append(_demo_card(user))
    return report


def _demo_card(user: AbstractBaseUser) -> str:
    """Give the demo user a Visa at the provider (its test id pm_card_visa), unless they have a
    card the provider still knows (a local provider may have lost its state since)."""
    if not payments.configured():
        return "demo card: skipped (no STRIPE_API_KEY)"
    saved = SavedCard.objects.filter(user=user).first()
    if saved is not None and saved.usable and payments.customer_exists(saved.customer_id):
        return f"demo card: exists ({saved})"
    try:
        try:
            card = services.save_payment_method(user, DEMO_CARD)
        except services.InvalidPaymentMethod:
            # The provider no longer knows the saved customer: start over with a new one.
            SavedCard.objects.filter(user=user).delete()
            card = services.save_payment_method(user, DEMO_CARD)
    except services.PurchaseError as exc:
        return f"demo card: not saved ({exc.message})"
    return f"demo card: saved ({card})"
