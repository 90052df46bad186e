"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from pathlib import Path

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
