"""Fixtures shared by the whole suite."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from purchases.models import Product


@pytest.fixture
def make_user(db):
    def make(username: str = "alice", password: str = "pw-alice-123"):
        return get_user_model().objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def product(db):
    return Product.objects.create(
        item_id="widget-001", name="Widget", price=Decimal("9.99"), stock=10
    )


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    # Production uses whitenoise's manifest storage, which needs `collectstatic` first;
    # in-process tests serve the source files instead.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # Throttles count in the default cache (files shared by the processes of a run): every test
    # starts from no requests counted.
    cache.clear()
