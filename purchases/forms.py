"""Forms of the storefront pages. They only carry input: the services validate and decide."""

from __future__ import annotations

from django import forms

from purchases.keys import new_key


class BuyForm(forms.Form):
    """A "Buy now" button: the product and the idempotency key generated with the page.

    The key is made by the server once per page view, so every resubmission of this one form
    (double click, reload of the POST, back and click again) names the same purchase."""

    key = forms.CharField(max_length=64, widget=forms.HiddenInput)
    item_id = forms.CharField(max_length=64, widget=forms.HiddenInput)

    @classmethod
    def for_item(cls, item_id: str) -> BuyForm:
        """An unbound form for `item_id` with a fresh key (auto_id off: one form per product)."""
        return cls(auto_id=False, initial={"key": new_key(), "item_id": item_id})


class CardForm(forms.Form):
    """Save a card: a provider PaymentMethod id (in test mode, one of TEST_CARDS)."""

    payment_method = forms.CharField(max_length=255)


# Stripe's test PaymentMethods (test mode and local providers): what the account page offers.
TEST_CARDS = [
    ("pm_card_visa", "Visa \u2022\u2022\u2022\u2022 4242: charges"),
    ("pm_card_chargeCustomerFail", "Visa \u2022\u2022\u2022\u2022 0341: saved, then declined"),
    ("pm_card_visa_chargeDeclined", "Visa \u2022\u2022\u2022\u2022 0002: refused when saved"),
]
