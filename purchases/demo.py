"""The demo catalog and demo user that `make run` loads."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from purchases.models import Product

DEMO_PRODUCTS = [
    ("widget-001", "Widget", Decimal("9.99"), 100),
    ("gadget-002", "Gadget", Decimal("24.50"), 50),
    ("gizmo-003", "Gizmo", Decimal("4.25"), 200),
    ("doohickey-004", "Doohickey", Decimal("99.00"), 5),
    ("sprocket-005", "Sprocket", Decimal("1.75"), 1000),
]
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"


def seed_demo(*, force: bool = False) -> list[str]:
    """Create the demo products (leaving existing ones, and their stock, alone) and the demo user.

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
        user, created = user_model.objects.get_or_create(username=DEMO_USERNAME)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        report.append(f"demo user {DEMO_USERNAME!r}: {'created' if created else 'exists'}")
    return report
