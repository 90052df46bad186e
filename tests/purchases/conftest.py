import time

import pytest
from rest_framework.test import APIClient

import durable
from purchases.models import Purchase


@pytest.fixture(params=[True, False], ids=["eager", "by-a-worker"])
def eager(request, settings) -> bool:
    """Both ways a purchase reaches its cancel window: started by the request that accepted it
    (ONECLICK_EAGER_START, the default) or by a worker (here: the test, with `finish`)."""
    settings.ONECLICK_EAGER_START = request.param
    return request.param


def wait_past_the_window(purchase: Purchase) -> None:
    """Return once the engine's clock has passed the purchase's deadline (a condition, not a
    margin: however slow the machine, the window has closed when this returns)."""
    while durable.database_now() < purchase.cancel_until:
        time.sleep(0.02)


@pytest.fixture
def short_window(settings):
    settings.ONECLICK_CANCEL_WINDOW_SECONDS = 0.3
    return 0.3


@pytest.fixture
def alice(make_user):
    return make_user("alice", "pw-alice-123")


@pytest.fixture
def bob(make_user):
    return make_user("bob", "pw-bob-123")


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def api_bob(bob):
    client = APIClient()
    client.force_authenticate(bob)
    return client
