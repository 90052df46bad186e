"""Catalog, purchases and orders.

A purchase's state is not stored here: it is derived from its workflow run.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

# The most units a product's stock may hold: far beyond any shop's, well inside the database's
# integer (PostgreSQL's is 32-bit), so that no entry in the admin can overflow it.
MAX_STOCK = 1_000_000_000


class Product(models.Model):
    item_id = models.CharField(max_length=64, unique=True, help_text="e.g. widget-001")
    name = models.CharField(max_length=200)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    stock = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="product_stock_gte_0"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.item_id})"

    def clean(self) -> None:
        """The stock stays within MAX_STOCK (checked by every model form, the admin's too)."""
        super().clean()
        if self.stock is not None and self.stock > MAX_STOCK:
            raise ValidationError({"stock": f"At most {MAX_STOCK:,} units."})


class Purchase(models.Model):
    """A customer's one-click purchase. `key` is the customer's idempotency key, scoped to them."""

    # PROTECT: deleting a customer must not delete a purchase whose workflow is still running.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    key = models.CharField(max_length=64)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="purchases")
    unit_price = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="The price shown when the customer bought"
    )
    cancel_until = models.DateTimeField(help_text="End of the cancel window, fixed at acceptance")
    run = models.OneToOneField(
        "durable.WorkflowRun", on_delete=models.PROTECT, related_name="purchase", null=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="purchase_unique_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} by {self.user} ({self.product.item_id})"


class Order(models.Model):
    """The order a confirmed purchase made: one per purchase, its number never reused."""

    order_number = models.CharField(max_length=32, unique=True)
    purchase = models.OneToOneField(Purchase, on_delete=models.PROTECT, related_name="order")
    price_paid = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.order_number
