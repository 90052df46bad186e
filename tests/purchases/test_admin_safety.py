"""The admin cannot oversell, let view-only staff operate runs, or strand a live purchase."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from durable.models import RunStatus, WorkflowRun
from purchases import services
from purchases.models import Product, Purchase

pytestmark = pytest.mark.django_db


def test_saving_the_product_list_never_writes_back_a_stale_stock(admin_client, product):
    url = reverse("admin:purchases_product_changelist")
    page = admin_client.get(url)
    assert b'name="form-0-stock"' not in page.content, "stock is not editable in the list"
    # A customer buys meanwhile: the stock the page showed is stale.
    Product.objects.filter(pk=product.pk).update(stock=9)
    admin_client.post(
        url,
        {
            "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(product.pk),
            "form-0-stock": "10", "form-0-active": "on", "_save": "Save",
        },
    )  # fmt: skip
    assert Product.objects.get(pk=product.pk).stock == 9


def test_restock_adds_to_the_current_stock(admin_client, product):
    url = reverse("admin:purchases_product_change", args=[product.pk])
    admin_client.get(url)  # the form shows stock 10...
    Product.objects.filter(pk=product.pk).update(stock=7)  # ...three are sold meanwhile
    response = admin_client.post(
        url,
        {"item_id": "widget-001", "name": "Widget", "price": "9.99", "active": "on",
         "add_stock": "5"},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    assert Product.objects.get(pk=product.pk).stock == 12


def _staff(username: str, *codenames: str) -> Client:
    user = get_user_model().objects.create_user(username, password="pw-staff-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_run_actions_need_the_change_permission(make_user, product):
    customer = make_user("carol")
    services.buy(customer, "k1", "widget-001")
    run_id = services.run_id_for(customer.pk, "k1")
    WorkflowRun.objects.filter(pk=run_id).update(enqueued_at=None)
    url = reverse("admin:durable_workflowrun_changelist")
    viewer = _staff("viewer", "view_workflowrun")
    assert viewer.get(url).status_code == 200
    assert b"cancel_runs" not in viewer.get(url).content
    viewer.post(url, {"action": "cancel_runs", "_selected_action": [run_id]})
    viewer.post(url, {"action": "resume_now", "_selected_action": [run_id]})
    run = WorkflowRun.objects.get(pk=run_id)
    assert not run.is_finished and run.enqueued_at is None, "the viewer changed nothing"
    operator = _staff("operator", "view_workflowrun", "change_workflowrun")
    assert b"cancel_runs" in operator.get(url).content
    operator.post(url, {"action": "cancel_runs", "_selected_action": [run_id]})
    assert WorkflowRun.objects.get(pk=run_id).status == RunStatus.CANCELLED


def test_runs_and_live_purchases_cannot_be_deleted(admin_client, make_user, product):
    customer = make_user("carol")
    services.buy(customer, "k1", "widget-001")
    purchase = Purchase.objects.get()
    run_url = reverse("admin:durable_workflowrun_delete", args=[purchase.run_id])
    assert admin_client.post(run_url, {"post": "yes"}).status_code == 403
    purchase_url = reverse("admin:purchases_purchase_delete", args=[purchase.pk])
    assert admin_client.post(purchase_url, {"post": "yes"}).status_code == 403
    admin_client.post(
        reverse("admin:purchases_purchase_changelist"),
        {"action": "delete_selected", "_selected_action": [purchase.pk], "post": "yes"},
    )
    admin_client.post(
        reverse("admin:durable_workflowrun_changelist"),
        {"action": "delete_selected", "_selected_action": [purchase.run_id], "post": "yes"},
    )
    assert Purchase.objects.filter(pk=purchase.pk).exists()
    assert WorkflowRun.objects.filter(pk=purchase.run_id).exists()


def test_deleting_a_customer_with_a_live_purchase_is_refused(make_user, product):
    customer = make_user("carol")
    services.buy(customer, "k1", "widget-001")
    with pytest.raises(ProtectedError):
        customer.delete()
    assert Purchase.objects.filter(user=customer).exists()
