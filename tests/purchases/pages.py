"""The storefront's pages as a customer uses them, for the tests of the HTML views."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.urls import reverse


def buy_form_fields(html: str, item_id: str) -> dict[str, str]:
    """The hidden fields of the catalog's Buy now form for `item_id`."""
    for form in re.findall(r"<form[^>]*data-buy-form>(.*?)</form>", html, re.S):
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
        if fields.get("item_id") == item_id:
            return fields
    raise AssertionError(f"no Buy now form for {item_id} in the page")


def messages_of(response) -> list[str]:
    """The texts of the messages a page shows."""
    return [str(message) for message in response.context["messages"]]


def buy_from_catalog(client: Client, item_id: str = "widget-001") -> tuple[Any, str]:
    """Press Buy now for `item_id` on the catalog; returns the page it leads to and the key."""
    fields = buy_form_fields(client.get("/").content.decode(), item_id)
    return client.post(reverse("buy"), fields, follow=True), fields["key"]
