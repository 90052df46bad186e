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
            # The database holds the bound too, for writes that skip clean() (update(), F()).
            models.CheckConstraint(
                condition=models.Q(stock__gte=0, stock__lte=MAX_STOCK),
                name="product_stock_within_0_and_max_stock",
            ),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.item_id})"

    def clean(self) -> None:
        """The stock stays within MAX_STOCK (checked by every model form, the admin's too)."""
        super().clean()
        if self.stock is not None and self.stock > MAX_STOCK:
            raise ValidationError({"stock": f"At most {MAX_STOCK:,} units."})


def card_label(brand: str, last4: str) -> str:
    """A card as people see it: "Visa \u2022\u2022\u2022\u2022 4242"."""
    return f"{brand.capitalize() or 'Card'} \u2022\u2022\u2022\u2022 {last4}"


class PaymentState(models.TextChoices):
    """Where a purchase's payment is: none (window open, cancelled, out of stock), charging (the
    order is written and the card is being charged), paid, or declined."""

    NONE = "", "no payment"
    CHARGING = "charging", "charging"
    PAID = "paid", "paid"
    DECLINED = "declined", "declined"


class SavedCard(models.Model):
    """A customer's card at the payment provider: what a one-click purchase charges."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_card"
    )
    customer_id = models.CharField("provider customer", max_length=255)
    payment_method_id = models.CharField(max_length=255, blank=True, default="")
    brand = models.CharField(max_length=32, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return card_label(self.brand, self.last4)

    @property
    def usable(self) -> bool:
        """Whether a purchase can charge it (a customer with a payment method)."""
        return bool(self.customer_id and self.payment_method_id)


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
    # The payment, fixed at the click: the price above in this currency, to this card.
    currency = models.CharField(max_length=3, default="usd")
    customer_id = models.CharField("provider customer", max_length=255, blank=True, default="")
    payment_method_id = models.CharField(max_length=255, blank=True, default="")
    card_brand = models.CharField(max_length=32, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    payment_state = models.CharField(
        max_length=16, choices=PaymentState.choices, default=PaymentState.NONE, db_index=True
    )
    payment_intent_id = models.CharField("PaymentIntent", max_length=255, blank=True, default="")
    payment_message = models.TextField(
        blank=True, default="", help_text="The provider's message when it declined the charge"
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="purchase_unique_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} by {self.user} ({self.product.item_id})"

    @property
    def card_label(self) -> str:
        """The card this purchase charges, as people see it ("" for none)."""
        return card_label(self.card_brand, self.card_last4) if self.payment_method_id else ""


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
