"""Staff inspect products, purchases (with state and a link to the run) and orders."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from purchases import services
from purchases.models import Order
from tests.support.inline import finish

# Transactional: the purchases start eagerly when their transaction commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def test_purchase_and_order_pages(admin_client, make_user, product, settings):
    customer = make_user("carol")
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0  # confirmed by its eager start
    services.buy(customer, "a1", "widget-001")
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 60  # cancelled well inside its window
    services.buy(customer, "a2", "widget-001")
    services.cancel(customer, "a2")
    finish([services.run_id_for(customer.pk, k) for k in ("a1", "a2")])
    purchases = admin_client.get(reverse("admin:purchases_purchase_changelist"))
    assert purchases.status_code == 200
    assert b"CONFIRMED" in purchases.content and b"CANCELLED" in purchases.content
    cancelled_only = admin_client.get(
        reverse("admin:purchases_purchase_changelist"), {"state": "cancelled"}
    )
    assert b"a2" in cancelled_only.content and b">a1<" not in cancelled_only.content
    order = Order.objects.get()
    orders = admin_client.get(
        reverse("admin:purchases_order_changelist"), {"q": order.order_number}
    )
    assert orders.status_code == 200 and order.order_number.encode() in orders.content
    detail = admin_client.get(reverse("admin:purchases_order_change", args=[order.pk]))
    assert detail.status_code == 200
    assert b'name="price_paid"' not in detail.content, "money fields are read-only"
    run_link = reverse("admin:durable_workflowrun_change", args=[quote(order.purchase.run_id)])
    page = admin_client.get(reverse("admin:purchases_purchase_change", args=[order.purchase.pk]))
    assert run_link.encode() in page.content
    run_page = admin_client.get(run_link)
    assert run_page.status_code == 200 and b"checkout" in run_page.content
    assert admin_client.get(reverse("admin:purchases_product_changelist")).status_code == 200
