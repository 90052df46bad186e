"""Admin for staff: products, purchases (with their workflow run), orders."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from purchases.models import Order, Product, Purchase
from purchases.selectors import purchase_status


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("item_id", "name", "price", "stock", "active")
    list_filter = ("active",)
    search_fields = ("item_id", "name")
    list_editable = ("stock", "active")


class PurchaseStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("pending", "Pending"),
            ("confirmed", "Confirmed"),
            ("cancelled", "Cancelled"),
            ("failed", "Failed"),
        ]

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if value == "pending":
            return queryset.filter(run__status__in=["pending", "running", "waiting"])
        if value in {"confirmed", "cancelled", "failed"}:
            return queryset.filter(run__result__state=f"PURCHASE_{value.upper()}")
        return queryset


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ("key", "user", "product", "state", "cancel_until", "created_at", "workflow_run")
    list_filter = (PurchaseStateFilter, "created_at", "user")
    search_fields = ("key", "user__username", "product__item_id")
    list_select_related = ("user", "product", "run")
    date_hierarchy = "created_at"
    readonly_fields = (
        "user", "key", "product", "unit_price", "cancel_until", "workflow_run", "state",
        "created_at", "cancelled_at",
    )  # fmt: skip
    exclude = ("run",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="state")
    def state(self, purchase: Purchase) -> str:
        return purchase_status(purchase).state

    @admin.display(description="workflow run")
    def workflow_run(self, purchase: Purchase) -> str:
        if not purchase.run_id:
            return "-"
        url = reverse("admin:durable_workflowrun_change", args=[quote(purchase.run_id)])
        return format_html('<a href="{}">{}</a>', url, purchase.run_id)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("order_number", "purchase", "price_paid", "created_at")
    search_fields = ("order_number", "purchase__user__username", "purchase__key")
    readonly_fields = ("order_number", "purchase", "price_paid", "created_at")
    list_select_related = ("purchase", "purchase__user", "purchase__product")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
