"""The shop's Prometheus metrics: payment outcomes and the provider's latency.

Registered like durable's (durable/runtime/metrics.py): recorded in the process where the call
happens, added up across processes by prometheus_client's multiprocess files at each scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# From a local provider's few milliseconds to a call that used up its timeout and retries.
PROVIDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

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
    buckets=PROVIDER_BUCKETS,
)


def charge_outcome(outcome: str) -> None:
    """Count one attempt to charge that ended `outcome` (paid, declined, unknown)."""
    CHARGE_OUTCOMES.labels(outcome=outcome).inc()


def provider_call(call: str, seconds: float) -> None:
    """Record one call to the provider (`charge`, `attach_card`) that took `seconds`."""
    PROVIDER_SECONDS.labels(call=call).observe(max(seconds, 0.0))
