"""Telling the customer how a purchase ended: one email, through Django's email framework.

Sent by a plain workflow step, so at least once: a worker that dies after the mail server
accepted it and before the step's checkpoint sends it again. Every send of one purchase's email
carries the same Message-ID (derived from the step's idempotency key), so a resend is
recognisably the same message.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

import durable
from purchases.models import Purchase
from purchases.states import CANCELLED, CONFIRMED, short_state


def message_id(idempotency_key: str) -> str:
    """A Message-ID for the step `idempotency_key`: the same for every attempt of the step."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "oneclick.invalid"
    return f"<{digest}.purchase@{domain}>"


def compose_email(run_id: str, outcome: dict[str, Any]) -> dict[str, Any] | None:
    """The email telling the purchase's customer its `outcome` (confirmed, cancelled or
    failed): `{"to", "subject", "body"}`, or None for a customer without an address. A
    transactional step: what is sent is written down before sending, and `send_email` then
    needs no database."""
    purchase = Purchase.objects.select_related("user", "product").get(run_id=run_id)
    address = getattr(purchase.user, "email", "")
    if not address:
        return None
    subject, body = _text(purchase, outcome)
    return {"to": [address], "subject": subject, "body": body}


def send_email(email: dict[str, Any]) -> dict[str, str]:
    """Send `email` (compose_email's) through Django's email framework, with the Message-ID of
    the running step's key; a mail server error raises and the step tries again."""
    mid = message_id(durable.current_step().idempotency_key)
    EmailMessage(
        email["subject"], email["body"], to=email["to"], headers={"Message-ID": mid}
    ).send()
    return {"message_id": mid}


def _text(purchase: Purchase, outcome: dict[str, Any]) -> tuple[str, str]:
    name = purchase.product.name
    state = outcome["state"]
    if state == CONFIRMED:
        return (
            f"Your order {outcome['order_id']}: {name}",
            f"Thank you. Your order {outcome['order_id']} for {name} is confirmed and your "
            f"{purchase.card_label} was charged {purchase.unit_price} "
            f"{purchase.currency.upper()}.\n",
        )
    if state == CANCELLED:
        return (
            f"Cancelled: {name}",
            f"You cancelled your purchase of {name}. Nothing was charged.\n",
        )
    reason = outcome.get("message") or {
        "out_of_stock": "it sold out before your order went through"
    }.get(outcome.get("reason", ""), "something went wrong on our side")
    return (
        f"Not ordered: {name}",
        f"Sorry, your purchase of {name} did not go through ({short_state(state).lower()}): "
        f"{reason}. Nothing was charged.\n",
    )
