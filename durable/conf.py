"""The engine's settings, read lazily from `settings.DURABLE` so override_settings works."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

DEFAULTS: dict[str, float] = {
    "LEASE_SECONDS": 15.0,
    "POLL_INTERVAL_SECONDS": 0.1,
    "REDELIVER_AFTER_SECONDS": 30.0,
    "RETRY_BACKOFF_SECONDS": 0.5,
    "RETRY_BACKOFF_MAX_SECONDS": 60.0,
    "POLL_BATCH_SIZE": 500,
    # Database-only commands share one transaction until it has been open this long.
    "GROUP_COMMIT_SECONDS": 0.05,
    # An eagerly started run left unadvanced after its commit (its process died; only one whose
    # first command is a plain step) is taken by the poller after this.
    "EAGER_GRACE_SECONDS": 2.0,
    "RETENTION_DAYS": 30.0,
    "HEARTBEAT_SECONDS": 5.0,
    "HEALTH_STALE_SECONDS": 30.0,
    "OVERDUE_SECONDS": 5.0,
    # Plain steps' calls in flight at once per worker process (durable.runtime.step_pool).
    "STEPS_IN_FLIGHT": 128,
    # How long one task waits in all for a free step slot before handing its run back.
    "STEP_SLOT_WAIT_SECONDS": 10.0,
}


# Switches, off unless set.
FLAGS = (
    # Connections go through a pooler in transaction mode (PgBouncer): a server connection serves
    # one transaction of this process, then others'. The engine then keeps no session state on
    # it (no LISTEN, no SET) and its pushers poll for tasks instead of waiting for NOTIFY.
    "TRANSACTION_POOLER",
)


def flag(name: str) -> bool:
    """Whether the switch DURABLE[name] (one of FLAGS) is on."""
    assert name in FLAGS, name
    return bool(getattr(settings, "DURABLE", {}).get(name, False))


def get(name: str) -> float:
    """The value of DURABLE[name], or its default."""
    return float(getattr(settings, "DURABLE", {}).get(name, DEFAULTS[name]))


def seconds(name: str) -> dt.timedelta:
    """DURABLE[name] as a timedelta."""
    return dt.timedelta(seconds=get(name))
