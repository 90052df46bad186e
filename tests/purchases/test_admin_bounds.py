"""The admin's number fields have bounds the model enforces (issue 29, item 6): a stock or an
"Add to stock" past MAX_STOCK, however large, is a form error, never a 500 or a stored value;
and the database refuses a stock past it from any write that skips the model's clean()."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse

from purchases import services
from purchases.models import MAX_STOCK, Order, PaymentState, Product

pytestmark = pytest.mark.django_db

FIELDS = {"item_id": "widget-001", "name": "Widget", "price": "9.99", "active": "on"}
TOO_MANY = [str(MAX_STOCK + 1), "9223372036854775000", "99999999999999999999"]


@pytest.mark.parametrize("added", TOO_MANY)
def test_add_to_stock_past_the_bound_is_a_form_error(admin_client, product, added: str) -> None:
    url = reverse("admin:purchases_product_change", args=[product.pk])
    response = admin_client.post(url, {**FIELDS, "add_stock": added})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["add_stock"]
    assert Product.objects.get(pk=product.pk).stock == 10


def test_add_to_stock_that_would_pass_the_bound_is_a_form_error(admin_client, product):
    url = reverse("admin:purchases_product_change", args=[product.pk])
    response = admin_client.post(url, {**FIELDS, "add_stock": str(MAX_STOCK - 5)})
    assert response.status_code == 200
    assert "would pass" in str(response.context["adminform"].form.errors["add_stock"])
    filled = admin_client.post(url, {**FIELDS, "add_stock": str(MAX_STOCK - 10)})
    assert filled.status_code == 302
    assert Product.objects.get(pk=product.pk).stock == MAX_STOCK


@pytest.mark.parametrize("stock", TOO_MANY)
def test_a_new_products_stock_past_the_bound_is_a_form_error(admin_client, stock: str) -> None:
    url = reverse("admin:purchases_product_add")
    response = admin_client.post(url, {**FIELDS, "stock": stock})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["stock"]
    assert not Product.objects.exists()


def test_the_model_refuses_a_stock_past_the_bound(product):
    product.stock = MAX_STOCK + 1
    with pytest.raises(ValidationError) as refused:
        product.full_clean()
    assert "stock" in refused.value.message_dict
    product.stock = MAX_STOCK
    product.full_clean()


def test_an_add_that_a_concurrent_one_made_too_large_writes_nothing(product):
    # The form checked the stock as it was; another add landed before this one's update.
    Product.objects.filter(pk=product.pk).update(stock=MAX_STOCK - 3)
    assert services.add_stock(product, 5) is False
    assert Product.objects.get(pk=product.pk).stock == MAX_STOCK - 3
    assert services.add_stock(product, 3) is True
    assert Product.objects.get(pk=product.pk).stock == MAX_STOCK


def _update(product: Product) -> None:
    Product.objects.filter(pk=product.pk).update(stock=MAX_STOCK + 1)


def _add_in_the_database(product: Product) -> None:
    Product.objects.filter(pk=product.pk).update(stock=F("stock") + MAX_STOCK)


def _save_without_full_clean(product: Product) -> None:
    product.stock = MAX_STOCK + 1
    product.save()


def _create(product: Product) -> None:
    Product.objects.create(item_id="gadget-002", name="Gadget", price="1.00", stock=MAX_STOCK + 1)


@pytest.mark.parametrize(
    "write", [_update, _add_in_the_database, _save_without_full_clean, _create]
)
def test_the_database_refuses_a_stock_past_the_bound_from_writes_that_skip_clean(
    product, write: Callable[[Product], None]
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        write(product)
    assert Product.objects.get(pk=product.pk).stock == 10
    assert not Product.objects.filter(stock__gt=MAX_STOCK).exists()
    Product.objects.filter(pk=product.pk).update(stock=MAX_STOCK)
    assert Product.objects.get(pk=product.pk).stock == MAX_STOCK


def test_a_decline_after_the_stock_was_filled_to_the_bound_drops_its_unit(make_user, product):
    # checkout took a unit; the admin filled the stock to the bound before the card was declined.
    purchase = services.buy(make_user(), "k1", product.item_id).purchase
    assert services.checkout(purchase.run_id)["ok"] is True
    Product.objects.filter(pk=product.pk).update(stock=MAX_STOCK)
    services.record_decline(purchase.run_id, "Your card was declined.")
    assert Product.objects.get(pk=product.pk).stock == MAX_STOCK
    assert not Order.objects.exists()
    purchase.refresh_from_db()
    assert purchase.payment_state == PaymentState.DECLINED
