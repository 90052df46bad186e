import pytest

# Registers the example workflows in this process.
import tests.durable.example_workflows  # noqa: F401


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_SECONDS": 0.01}
