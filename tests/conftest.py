"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from devtools.stripe_provider import LocalProvider, configured_provider
from purchases import services
from purchases.models import Product


@pytest.fixture(scope="session", autouse=True)
def stripe_provider() -> Iterator[LocalProvider]:
    """localstripe in a process of its own for the whole session, and the settings (and the
    environment of the processes tests start) pointing the SDK at it: every purchase charges a
    saved card, so every test that buys needs a provider."""
    from django.conf import settings

    settings.STRIPE_API_KEY = ""  # a local provider, whatever the environment says
    with configured_provider() as provider:
        assert provider is not None
        yield provider


@pytest.fixture
def provider(stripe_provider) -> LocalProvider:
    """The session's local provider, emptied for this test."""
    stripe_provider.flush()
    return stripe_provider


@pytest.fixture
def give_card(provider):
    """Save a card for a user at the local provider (default: a Visa that charges)."""

    def give(user, payment_method: str = "pm_card_visa"):
        return services.save_payment_method(user, payment_method)

    return give


@pytest.fixture
def make_user(db, give_card):
    """A customer with a saved Visa (`card=False`: without a card)."""

    def make(username: str = "alice", password: str = "pw-alice-123", *, card: bool = True):
        user = get_user_model().objects.create_user(username=username, password=password)
        if card:
            give_card(user)
        return user

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


@pytest.fixture(scope="session", autouse=True)
def _children_through_pgbouncer(request):
    """ONECLICK_TEST_PGBOUNCER=1: the real processes tests start reach PostgreSQL through a real
    PgBouncer in transaction pooling mode (and run with DATABASE_POOLER=pgbouncer)."""
    if os.environ.get("ONECLICK_TEST_PGBOUNCER") != "1":
        yield
        return
    from django.db import connection

    from devtools.processes import LOG_DIR
    from tests.support import pgbouncer
    from tests.support.environment import PGBOUNCER_PORT

    assert connection.vendor == "postgresql", "ONECLICK_TEST_PGBOUNCER=1 needs DATABASE_URL"
    # Set up after the test database, so PgBouncer lets go of it before it is dropped.
    request.getfixturevalue("django_db_setup")
    settings = connection.settings_dict
    bouncer, port = pgbouncer.start(
        Path(tempfile.mkdtemp(prefix="oneclick-pgbouncer-")),
        settings["HOST"] or "127.0.0.1",
        settings["PORT"] or 5432,
    )
    os.environ[PGBOUNCER_PORT] = str(port)
    try:
        yield
    finally:
        del os.environ[PGBOUNCER_PORT]
        bouncer.kill()
    # The processes would get through, retrying; but none may meet what pooling breaks.
    faults = pgbouncer.pooling_faults(LOG_DIR.glob(f"*-{os.getpid()}-*.log"))
    assert not faults, f"errors of a pooled connection in the processes' logs: {faults}"


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    q_cluster = settings.Q_CLUSTER
    return f"django-q2 broker: {q_cluster.get('broker_class') or 'redis'} (DURABLE_BROKER)"
