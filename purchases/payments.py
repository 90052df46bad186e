"""The payment provider: Stripe's API through the official SDK, and nothing else.

One `StripeClient`, built lazily from the settings (so `override_settings` works) with explicit
timeouts and network retries. Two calls: `attach_card` saves a customer's card (a web request:
a provider it cannot reach is ProviderUnavailable), `charge` takes a payment (a workflow step:
its answer is definite, paid or declined, or the step raises durable.OutcomeUnknown and is
tried again under the same idempotency key).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe
from django.conf import settings

import durable
from purchases import metrics

# Currencies Stripe takes in whole units (no minor unit); every other one has 2 decimals.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


# A PaymentMethod id as Stripe makes them (pm_ and letters and digits; its test ids, such as
# pm_card_visa, have underscores): anything else is refused before asking the provider.
PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,250}$")


class ProviderUnavailable(Exception):
    """The provider could not be reached or did not answer (a web request says 503)."""


class InvalidPaymentMethod(Exception):
    """The provider refused the payment method (unknown, or not a card it can attach)."""


@dataclass(frozen=True, slots=True)
class Card:
    """A card attached to a provider customer: what a purchase charges and a page shows."""

    customer_id: str
    payment_method_id: str
    brand: str
    last4: str


_client: tuple[tuple[Any, ...], stripe.StripeClient] | None = None


def client() -> stripe.StripeClient:
    """The process's StripeClient for the current settings (built again when they change)."""
    global _client
    config = (
        settings.STRIPE_API_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )
    if _client is None or _client[0] != config:
        key, base, timeout, retries = config
        _client = (
            config,
            stripe.StripeClient(
                key or "sk_unset",
                base_addresses={"api": base} if base else None,
                max_network_retries=retries,
                http_client=stripe.RequestsClient(timeout=timeout),
            ),
        )
    return _client[1]


def configured() -> bool:
    """Whether a provider is configured at all (an API key is set)."""
    return bool(settings.STRIPE_API_KEY)


def test_mode() -> bool:
    """Whether the provider takes Stripe's test cards: a test key, or a local provider."""
    return settings.STRIPE_API_KEY.startswith("sk_test_") or bool(settings.STRIPE_API_BASE)


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's smallest unit, as Stripe takes it: 9.99 usd is 999."""
    exponent = 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2
    return int((amount * 10**exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def attach_card(customer_id: str, payment_method: str, *, user_id: int, email: str) -> Card:
    """Attach `payment_method` to the provider customer `customer_id` (made now when it is "",
    once per user and address: the creation's idempotency key names both) and make it the customer's
    default. InvalidPaymentMethod when the provider refuses it; ProviderUnavailable when it
    cannot be reached or fails."""
    if not PAYMENT_METHOD_ID.fullmatch(payment_method):
        raise InvalidPaymentMethod("not a PaymentMethod id (pm_ followed by letters and digits)")
    if not configured():
        raise ProviderUnavailable("payments are not configured (STRIPE_API_KEY is not set)")
    api = client().v1
    started = time.perf_counter()
    try:
        if not customer_id:
            customer = api.customers.create(
                params={"email": email, "metadata": {"user_id": str(user_id)}},
                # Two first saves at once make one customer; another address, another key.
                options={"idempotency_key": f"oneclick-customer-{user_id}-{_digest(email)}"},
            )
            customer_id = customer.id
        method = api.payment_methods.attach(payment_method, params={"customer": customer_id})
        api.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
        )
    except stripe.InvalidRequestError as exc:
        if exc.http_status in {400, 402, 404}:
            raise InvalidPaymentMethod(_message(exc, "this payment method is not valid")) from exc
        raise ProviderUnavailable(
            _message(exc, "the payment provider refused the request")
        ) from exc
    except stripe.CardError as exc:
        raise InvalidPaymentMethod(_message(exc, "this card was refused")) from exc
    except stripe.StripeError as exc:
        raise ProviderUnavailable(_message(exc, "the payment provider is unavailable")) from exc
    finally:
        metrics.provider_call("attach_card", time.perf_counter() - started)
    card = method.card
    return Card(customer_id, method.id, card.brand if card else "", card.last4 if card else "")


def charge(request: dict[str, Any]) -> dict[str, Any]:
    """Charge `request["amount"]` (minor units of `request["currency"]`) off-session to the
    saved card (`customer`, `payment_method`), with its `metadata`, under the running step's
    idempotency key: a retry after a crash, a timeout or a takeover is the same charge.

    Returns `{"paid": True, "payment_intent": "pi_..."}` or, for a definite refusal (a decline,
    an invalid request), `{"paid": False, "message": <the provider's message>}`. Raises
    durable.OutcomeUnknown when the answer is not known (timeout, connection error, 409, 429,
    5xx, or a provider that does not accept our key): the charge may or may not have happened,
    and only the same key may ask again. Reads no database."""
    params = {**request, "off_session": True, "confirm": True}
    try:
        result = _create_payment_intent(params, durable.current_step().idempotency_key)
    except durable.OutcomeUnknown:
        metrics.charge_outcome("unknown")
        raise
    metrics.charge_outcome("paid" if result["paid"] else "declined")
    return result


def _create_payment_intent(params: dict[str, Any], key: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        intent = client().v1.payment_intents.create(params=params, options={"idempotency_key": key})
    except stripe.CardError as exc:
        return {"paid": False, "message": _message(exc, "Your card was declined.")}
    except stripe.StripeError as exc:
        status = exc.http_status
        # A refusal of the request itself is an answer; a key used with other parameters is
        # not (the first request's outcome is what counts, and it is not known here).
        definite = isinstance(exc, stripe.InvalidRequestError) and status in {400, 404}
        if definite and not isinstance(exc, stripe.IdempotencyError):
            return {"paid": False, "message": _message(exc, "The payment was refused.")}
        raise durable.OutcomeUnknown(
            f"charge under key {key}: {type(exc).__name__} (HTTP {status or 'none'}): "
            f"{_message(exc, 'no answer')}"
        ) from exc
    finally:
        metrics.provider_call("charge", time.perf_counter() - started)
    if intent.status == "succeeded":
        return {"paid": True, "payment_intent": intent.id}
    if intent.status == "requires_payment_method":
        error = intent.last_payment_error
        return {"paid": False, "message": (error and error.message) or "Your card was declined."}
    # processing, requires_action...: not an answer yet; the same key will say more later.
    raise durable.OutcomeUnknown(
        f"charge under key {key}: PaymentIntent {intent.id} is {intent.status}"
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _message(exc: stripe.StripeError, default: str) -> str:
    error = exc.error
    return (error.message if error is not None and error.message else None) or default


def customer_exists(customer_id: str) -> bool:
    """Whether the provider knows the customer (False also when it cannot be reached)."""
    try:
        client().v1.customers.retrieve(customer_id)
    except stripe.StripeError:
        return False
    return True
