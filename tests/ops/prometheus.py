"""Reading the Prometheus text of GET /metrics in tests."""

from __future__ import annotations

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of Prometheus text `text`, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(figures: dict, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels` in `figures` (0 when absent)."""
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: Client, **extra: str) -> dict[tuple[str, tuple], float]:
    """Every sample `GET /metrics` answers `client` with (asserting a 200 of Prometheus text)."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())
