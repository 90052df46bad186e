"""The poller process: enqueues runs whose wake-up time has come or whose worker died."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from django.db import close_old_connections

from durable import conf
from durable.engine import poll_once
from durable.ops.health import PollerHeartbeat
from durable.persistence.backoff import Backoff

logger = logging.getLogger("durable.transport.poller")


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run_forever(max_seconds: float | None = None) -> None:
    """Poll until SIGTERM/SIGINT (or `max_seconds`). A failed poll (database away) is logged and
    retried with waits that double up to backoff.LONGEST_WAIT_SECONDS, so the poller outlives
    database restarts and is polling again within that long of the database's return."""
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interval = conf.get("POLL_INTERVAL_SECONDS")
    started = time.monotonic()
    heartbeat = PollerHeartbeat()
    backoff = Backoff(interval)
    failing = False
    logger.info("durable poller started, interval %.3fs", interval)
    while not stop.requested:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        try:
            close_old_connections()
            ids = poll_once()
            heartbeat.tick()
        except Exception as exc:
            if failing:  # the traceback was logged at the first failure
                logger.warning("poll failed again: %s", (str(exc).splitlines() or [repr(exc)])[0])
            else:
                logger.exception("poll failed; retrying until it succeeds")
            failing = True
            backoff.wait()
            continue
        if failing:
            logger.info("polling again")
            failing = False
            backoff.reset()
        if ids:
            logger.info("enqueued %d due runs", len(ids))
        # A full batch means more are due: go again at once.
        if len(ids) < conf.get("POLL_BATCH_SIZE"):
            time.sleep(interval)
    logger.info("durable poller stopped")
