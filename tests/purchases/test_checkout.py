"""The checkout step on its own: what it takes, what it copies, and what it refuses."""

from decimal import Decimal

import pytest

from purchases import services
from purchases.models import Order, Product, Purchase


def test_checkout_takes_one_unit_and_the_order_keeps_the_price_fixed_at_purchase(alice, product):
    purchase = services.buy(alice, "k1", "widget-001").purchase
    Product.objects.filter(pk=product.pk).update(price=Decimal("20.00"))
    outcome = services.checkout(purchase.run_id)
    order = Order.objects.get()
    card = purchase.user.saved_card
    assert outcome == {
        "ok": True,
        "order_id": order.order_number,
        "charge": {
            "customer": card.customer_id, "payment_method": card.payment_method_id,
            "amount": 999, "currency": "usd",
            "metadata": {
                "purchase": "k1", "user_id": str(alice.pk), "order_number": order.order_number,
            },
        },
    }  # fmt: skip
    assert Purchase.objects.get(pk=purchase.pk).payment_state == "charging"
    assert order.purchase_id == purchase.pk and order.price_paid == Decimal("9.99")
    assert order.created_at is not None
    assert Product.objects.get(pk=product.pk).stock == 9


def test_checkout_of_an_unknown_run_raises_and_changes_nothing(product):
    with pytest.raises(Purchase.DoesNotExist):
        services.checkout("one_click_buy/0/no-such-purchase")
    assert Product.objects.get(pk=product.pk).stock == 10
    assert not Order.objects.exists()
