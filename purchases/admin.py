"""Admin for staff: products, purchases (with their workflow run), orders."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from durable.models import ACTIVE_STATUSES
from purchases import services
from purchases.models import MAX_STOCK, Order, Product, Purchase, SavedCard
from purchases.selectors import purchase_status
from purchases.states import FINAL_STATES, STATE_PREFIX, short_state


class ProductForm(forms.ModelForm):
    add_stock = forms.IntegerField(
        min_value=0, max_value=MAX_STOCK, initial=0, required=False, label="Add to stock",
        help_text="Units received: added to the stock as it is when you save (sales meanwhile "
        "are kept).",
    )  # fmt: skip

    class Meta:
        model = Product
        fields = ("item_id", "name", "price", "stock", "active")

    def clean_add_stock(self) -> int:
        added = self.cleaned_data.get("add_stock") or 0
        if added and self.instance.pk is not None:
            current = Product.objects.filter(pk=self.instance.pk).values_list("stock", flat=True)
            if current and current[0] + added > MAX_STOCK:
                raise forms.ValidationError(
                    f"The stock would pass {MAX_STOCK:,} units (it is {current[0]:,})."
                )
        return added


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Stock is never written back from a form: a page shows a value that sales may have changed
    since, so an existing product's stock only grows by `add_stock`, added in the database."""

    form = ProductForm
    list_display = ("item_id", "name", "price", "stock", "active")
    list_filter = ("active",)
    search_fields = ("item_id", "name")
    list_editable = ("active",)

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> tuple:
        return ("stock",) if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Product | None = None) -> list[str]:
        fields = ["item_id", "name", "price", "stock", "active"]
        return [*fields, "add_stock"] if obj is not None else fields

    def save_model(
        self, request: HttpRequest, obj: Product, form: forms.Form, change: bool
    ) -> None:
        if not change:
            obj.save()
            return
        obj.save(
            update_fields=[
                f for f in form.changed_data if f in {"item_id", "name", "price", "active"}
            ]
        )
        added = form.cleaned_data.get("add_stock") or 0
        if added and not services.add_stock(obj, added):  # sales or another add meanwhile
            self.message_user(
                request,
                f"The stock was not changed: adding {added:,} would pass {MAX_STOCK:,} units.",
                level=messages.ERROR,
            )
        obj.refresh_from_db(fields=["stock"])


class PurchaseStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        finals = [short_state(state) for state in FINAL_STATES]
        return [("pending", "Pending"), *((name.lower(), name.capitalize()) for name in finals)]

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if value == "pending":
            return queryset.filter(run__status__in=ACTIVE_STATUSES)
        state = f"{STATE_PREFIX}{(value or '').upper()}"
        if state in FINAL_STATES:
            return queryset.filter(run__result__state=state)
        return queryset


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = (
        "key", "user", "product", "state", "payment_state", "cancel_until", "created_at",
        "workflow_run",
    )  # fmt: skip
    list_filter = (PurchaseStateFilter, "payment_state", "created_at", "user")
    search_fields = ("key", "user__username", "product__item_id", "payment_intent_id")
    list_select_related = ("user", "product", "run")
    date_hierarchy = "created_at"
    readonly_fields = (
        "user", "key", "product", "unit_price", "currency", "cancel_until", "workflow_run",
        "state", "created_at", "cancelled_at", "card", "customer_id", "payment_method_id",
        "payment_state", "payment_intent_id", "payment_message", "paid_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("user", "key", "product", "state", "workflow_run")}),
        ("Window", {"fields": ("created_at", "cancel_until", "cancelled_at")}),
        (
            "Payment",
            {
                "fields": (
                    "unit_price", "currency", "card", "payment_state", "payment_intent_id",
                    "paid_at", "payment_message", "customer_id", "payment_method_id",
                )
            },
        ),
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Purchase | None = None) -> bool:
        """A purchase whose run is still live cannot be deleted: its workflow would then fail."""
        if obj is not None and obj.run_id and not obj.run.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        # The bulk delete checks no object; deleting one finished purchase at a time is enough.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="state")
    def state(self, purchase: Purchase) -> str:
        return purchase_status(purchase).state

    @admin.display(description="card")
    def card(self, purchase: Purchase) -> str:
        return purchase.card_label or "-"

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


@admin.register(SavedCard)
class SavedCardAdmin(admin.ModelAdmin):
    """Read-only: a card is saved by its customer, through the provider."""

    list_display = ("user", "__str__", "customer_id", "payment_method_id", "updated_at")
    search_fields = ("user__username", "customer_id", "payment_method_id")
    readonly_fields = ("user", "customer_id", "payment_method_id", "brand", "last4", "updated_at")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
