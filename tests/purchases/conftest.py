import pytest
from rest_framework.test import APIClient


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
