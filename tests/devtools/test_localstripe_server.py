"""devtools/localstripe_server.py's index of localstripe's store: listings read by type give
what localstripe's own scan of the whole store gives, and a localstripe whose listing changed
is refused loudly rather than served from an index that may no longer match it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localstripe import resources

from devtools import localstripe_server

CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}


@pytest.fixture
def indexed() -> Iterator[Any]:
    """localstripe's in-process store, empty and indexed for the test; localstripe's own listing
    (the classmethod object) is yielded and put back after."""
    original = resources.StripeObject.__dict__["_api_list_all"]
    original_class = resources.store.__class__
    resources.store.clear()
    localstripe_server._index_listings()
    try:
        yield original
    finally:
        resources.store.clear()
        resources.store.__class__ = original_class
        resources.StripeObject._api_list_all = original


def _paid_customer(email: str, amount: int) -> tuple[Any, Any]:
    customer = resources.Customer._api_create(email=email)
    method = resources.PaymentMethod._api_create(type="card", card=dict(CARD))
    resources.PaymentMethod._api_attach(method.id, customer=customer.id)
    intent = resources.PaymentIntent._api_create(
        amount=amount,
        currency="usd",
        customer=customer.id,
        payment_method=method.id,
        confirm=True,
        off_session=True,
    )
    return customer, intent.latest_charge


def _ids(listed: Any) -> list[str]:
    return [item.id for item in listed._list]


def test_the_pinned_localstripe_lists_as_the_replacement_assumes() -> None:
    """Fails when localstripe's base listing changes: compare it with _list_all, then update
    LISTING_SOURCE_SHA256."""
    assert localstripe_server.listing_source_digest() == localstripe_server.LISTING_SOURCE_SHA256


def test_a_localstripe_whose_listing_changed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localstripe_server, "LISTING_SOURCE_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="_api_list_all is not the one"):
        localstripe_server._index_listings()


def test_listings_by_type_match_localstripes_scan_of_the_whole_store(indexed: Any) -> None:
    own_listing = indexed.__func__
    kept, charge = _paid_customer("kept@example.com", 1000)
    gone, _ = _paid_customer("gone@example.com", 2000)
    _paid_customer("third@example.com", 3000)
    resources.Refund._api_create(charge=charge.id, amount=300)
    resources.Customer._api_delete(gone.id)
    kinds = (
        resources.Customer,
        resources.PaymentMethod,
        resources.PaymentIntent,
        resources.Charge,
        resources.Refund,
        resources.Event,
    )
    for kind in kinds:
        by_index = localstripe_server._list_all(kind, None)
        assert _ids(by_index) == _ids(own_listing(kind, None)), kind.object
    assert len(_ids(own_listing(resources.Customer, None))) == 2
    # Through the subclasses' own filters, which call the base listing.
    assert _ids(resources.Charge._api_list_all(None, customer=kept.id)) == [charge.id]
    assert charge.amount_refunded == 300
    assert not charge.refunded


def test_an_emptied_or_reloaded_store_is_indexed_again(indexed: Any) -> None:
    customer, _ = _paid_customer("reload@example.com", 1000)
    saved = dict(resources.store)
    resources.store.clear()
    assert _ids(resources.Customer._api_list_all(None)) == []
    resources.store.update(saved)
    assert _ids(resources.Customer._api_list_all(None)) == [customer.id]
