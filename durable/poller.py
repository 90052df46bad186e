"""The poller process: enqueues runs whose wake-up time has come or whose worker died."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from django.db import close_old_connections

from durable import conf
from durable.engine import poll_once
from durable.health import PollerHeartbeat

logger = logging.getLogger("durable.poller")


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run_forever(max_seconds: float | None = None) -> None:
    """Poll until SIGTERM/SIGINT (or `max_seconds`). A failed poll (database away) is logged and
    retried, so the poller outlives database restarts."""
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interval = conf.get("POLL_INTERVAL_SECONDS")
    started = time.monotonic()
    heartbeat = PollerHeartbeat()
    logger.info("durable poller started, interval %.3fs", interval)
    while not stop.requested:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        try:
            close_old_connections()
            ids = poll_once()
            heartbeat.tick()
        except Exception:
            logger.exception("poll failed; retrying")
            time.sleep(min(5.0, interval * 10))
            continue
        if ids:
            logger.info("enqueued %d due runs", len(ids))
        # A full batch means more are due: go again at once.
        if len(ids) < conf.get("POLL_BATCH_SIZE"):
            time.sleep(interval)
    logger.info("durable poller stopped")
