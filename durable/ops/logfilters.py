"""Keep the heartbeat probes out of the INFO log: a poller sends one every few seconds, and
django-q2 logs three INFO lines for each (enqueued, processing, processed)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

# The probe's task path (dispatch.PROBE_TASK_PATH) and task name (health.send_worker_probe),
# written out: the logging configuration imports this module before Django's apps are loaded.
PROBE_MARKERS = ("durable.tasks.worker_probe", "durable heartbeat probe")
_sending_probe = contextvars.ContextVar("durable_sending_probe", default=False)


@contextlib.contextmanager
def sending_probe() -> Iterator[None]:
    """Inside it, django-q2's lines (e.g. "Enqueued ...", which names no task) are a probe's."""
    token = _sending_probe.set(True)
    try:
        yield
    finally:
        _sending_probe.reset(token)


class DemoteProbeTasks(logging.Filter):
    """On the "django-q" logger: lines about a heartbeat probe become DEBUG lines (dropped
    unless the `durable.ops.health` logger is at DEBUG); every other line passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if not (_sending_probe.get() or any(m in record.getMessage() for m in PROBE_MARKERS)):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("durable.ops.health").isEnabledFor(logging.DEBUG)
