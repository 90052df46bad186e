"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from purchases.models import Product


@pytest.fixture
def make_user(db):  # noqa: ANN001, ANN201
    def make(username: str = "alice", password: str = "pw-alice-123"):  # noqa: ANN202
        return get_user_model().objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def product(db):  # noqa: ANN001, ANN201
    return Product.objects.create(item_id="widget-001", name="Widget", price="9.99", stock=10)
