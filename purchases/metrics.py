"""The shop's Prometheus metrics: payment outcomes and the provider's latency.

Registered like durable's (durable/metrics.py): recorded in the process where the call happens,
added up across processes by prometheus_client's multiprocess files at each scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from durable.metrics import DURATION_BUCKETS

CHARGE_OUTCOMES = Counter(
    "oneclick_charge_outcomes_total",
    "Charge attempts by outcome: paid, declined, or unknown (timeout, refused, 5xx, 429: retried "
    "under the same idempotency key).",
    ["outcome"],
)
PROVIDER_SECONDS = Histogram(
    "oneclick_payment_provider_duration_seconds",
    "Time of one call to the payment provider (the SDK's own retries included), by call.",
    ["call"],
    buckets=DURATION_BUCKETS,
)


def charge_outcome(outcome: str) -> None:
    """Count one attempt to charge that ended `outcome` (paid, declined, unknown)."""
    CHARGE_OUTCOMES.labels(outcome=outcome).inc()


def provider_call(call: str, seconds: float) -> None:
    """Record one call to the provider (`charge`, `attach_card`) that took `seconds`."""
    PROVIDER_SECONDS.labels(call=call).observe(max(seconds, 0.0))
