"""The poll loop: enqueue the runs that are due (wake-up time come, worker dead, task lost), and
after each poll call what the caller asked for (the poller process's heartbeat duties)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from types import FrameType

from django.db import close_old_connections, transaction

from durable import conf
from durable.persistence import store
from durable.persistence.backoff import Backoff
from durable.transport import dispatch

logger = logging.getLogger("durable.transport.poller")


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def poll_once(limit: int | None = None) -> list[str]:
    """Enqueue every run that is due: wake-up time come, lease expired (dead worker), or a task
    enqueued long ago and never taken (lost), all by the database's clock. Safe to run in
    several pollers at once."""
    # One transaction: with the ORM broker a run is never marked enqueued without its task.
    with transaction.atomic():
        ids = store.claim_due_runs(
            conf.seconds("REDELIVER_AFTER_SECONDS"), int(limit or conf.get("POLL_BATCH_SIZE"))
        )
        if ids:
            dispatch.enqueue_many(ids)
    return ids


def run_forever(after_each_poll: Callable[[], None], max_seconds: float | None = None) -> None:
    """Poll until SIGTERM/SIGINT (or `max_seconds`), calling `after_each_poll` after every poll
    that succeeded. A failed poll (or a failed `after_each_poll`: the database away) is logged
    and retried with waits that double up to backoff.LONGEST_WAIT_SECONDS, so the poller
    outlives database restarts and is polling again within that long of the database's
    return."""
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interval = conf.get("POLL_INTERVAL_SECONDS")
    started = time.monotonic()
    backoff = Backoff(interval)
    failing = False
    logger.info("durable poller started, interval %.3fs", interval)
    while not stop.requested:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        try:
            close_old_connections()
            ids = poll_once()
            after_each_poll()
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
