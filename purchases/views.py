"""Storefront pages: thin views that turn HTTP into calls of the services and selectors and back.

Buying and cancelling are plain POST forms answered with a redirect, so they work without
JavaScript; the purchase page's countdown and live status are an enhancement on top.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from purchases import payments, selectors, services
from purchases.forms import TEST_CARDS, BuyForm, CardForm
from purchases.models import Purchase
from purchases.selectors import PurchaseStatus
from purchases.signin import LockoutAuthenticationForm, answer_lockout

ORDERS_PER_PAGE = 20


class SignInView(auth_views.LoginView):
    """Django's sign-in, which hints the demo account only on a development server. Failed
    sign-ins count per client address with every other sign-in's (purchases/signin.py); past
    the limit the form answers 429 without checking the password (no hashing)."""

    authentication_form = LockoutAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "demo_hint": settings.DEBUG}

    def form_invalid(self, form: Any) -> HttpResponse:
        return answer_lockout(super().form_invalid(form), form)


class SignOutView(auth_views.LogoutView):
    """Django's sign-out (POST only), saying so on the sign-in page it redirects to."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have signed out.")
        return response


@login_required
@require_safe
def catalog(request: HttpRequest) -> HttpResponse:
    """The products, each with a Buy now form carrying a key made for this page view."""
    offers = [
        (product, BuyForm.for_item(product.item_id)) for product in selectors.active_products()
    ]
    card = selectors.saved_card(request.user)
    response = render(request, "purchases/catalog.html", {"offers": offers, "card": card})
    # Cacheable by the browser only (never no-store): going back must show the same page and
    # so the same keys, so that "back, then Buy again" names the purchase already made.
    patch_cache_control(response, private=True)
    return response


@login_required
@require_POST
def buy(request: HttpRequest) -> HttpResponse:
    """Start the purchase (or find the one this form's key started) and show it."""
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That Buy button did not work. Please try again.")
        return redirect("catalog")
    try:
        bought = services.buy(request.user, form.cleaned_data["key"], form.cleaned_data["item_id"])
    except services.KeyConflict as exc:
        messages.warning(request, "That button was already used for this purchase.")
        return redirect("purchase", key=exc.purchase.key)
    except services.UnknownItem:
        messages.error(request, "Sorry, that product is not available.")
        return redirect("catalog")
    except services.TooManyPending as exc:
        messages.error(request, exc.message)
        return redirect("catalog")
    except services.NoPaymentMethod:
        messages.error(request, "Save a card on your account page first: one click charges it.")
        return redirect("account")
    except services.PurchaseError:
        messages.error(request, "That Buy button has expired. Please try again.")
        return redirect("catalog")
    if not bought.created:
        messages.info(
            request, "You had already placed this order: here it is. Nothing new was bought."
        )
    return redirect("purchase", key=bought.purchase.key)


@login_required
@require_safe
@never_cache
def purchase(request: HttpRequest, key: str) -> HttpResponse:
    """One purchase of the user's: its live status and, while the window is open, Cancel."""
    found = _own_purchase(request, key)
    return render(request, "purchases/purchase.html", _status_context(found))


@login_required
@require_safe
@never_cache
def purchase_status(request: HttpRequest, key: str) -> JsonResponse:
    """The purchase's state and its status panel as HTML, for the page to poll."""
    found = _own_purchase(request, key)
    context = _status_context(found)
    html = render_to_string("purchases/_status.html", context, request=request)
    return JsonResponse({"state": context["status"].state, "html": html})


@login_required
@require_POST
def cancel(request: HttpRequest, key: str) -> HttpResponse:
    """Ask to cancel; accepted or too late, the answer is a message on the purchase page."""
    try:
        outcome = services.cancel(request.user, key)
    except services.PurchaseError as exc:
        raise Http404("No such purchase") from exc
    state = outcome.status.state
    if outcome.accepted:
        messages.success(request, "Your purchase is cancelled. Nothing will be ordered.")
    elif state == "CONFIRMED":
        messages.warning(request, "Too late, your order is confirmed.")
    elif state == "PENDING":
        messages.warning(
            request, "Too late, the cancel window has closed: your order is being confirmed."
        )
    else:
        messages.warning(request, "Too late to cancel: this purchase has already ended.")
    return redirect("purchase", key=key)


@login_required
@require_safe
def orders(request: HttpRequest) -> HttpResponse:
    """The user's purchases, newest first, with their state and order number."""
    page = Paginator(selectors.purchases_of(request.user), ORDERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(item, selectors.purchase_status(item)) for item in page]
    return render(request, "purchases/orders.html", {"page": page, "rows": rows})


@login_required
@require_safe
def account(request: HttpRequest) -> HttpResponse:
    """The customer's saved card and, in test mode, Stripe's test cards to choose from."""
    return render(
        request,
        "purchases/account.html",
        {
            "card": selectors.saved_card(request.user),
            "test_cards": TEST_CARDS if payments.test_mode() else [],
        },
    )


@login_required
@require_POST
def save_card(request: HttpRequest) -> HttpResponse:
    """Save the chosen card; what went wrong is a message on the account page."""
    form = CardForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a card to save.")
        return redirect("account")
    try:
        card = services.save_payment_method(request.user, form.cleaned_data["payment_method"])
    except services.PaymentsUnavailable:
        messages.error(
            request, "Our payment provider is unavailable right now, nothing was changed. "
            "Please try again in a minute.",
        )  # fmt: skip
    except services.PurchaseError:
        messages.error(request, "That card was refused. Please choose another.")
    else:
        messages.success(request, f"Saved: one click now charges your {card}.")
    return redirect("account")


def _own_purchase(request: HttpRequest, key: str) -> Purchase:
    try:
        return services.get_purchase(request.user, key)
    except services.PurchaseError as exc:  # not found, another user's, or a malformed key
        raise Http404("No such purchase") from exc


def _status_context(found: Purchase) -> dict[str, Any]:
    status: PurchaseStatus = selectors.purchase_status(found)
    # The page counts down from the server's clock, not the browser's (which may be wrong).
    remaining_ms = max(0, int((found.cancel_until - timezone.now()).total_seconds() * 1000))
    window_ms = max(1, int((found.cancel_until - found.created_at).total_seconds() * 1000))
    return {
        "purchase": found,
        "status": status,
        "remaining_ms": remaining_ms,
        "remaining_s": math.ceil(remaining_ms / 1000),
        "window_ms": max(window_ms, remaining_ms),
    }
