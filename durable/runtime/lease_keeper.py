"""Keeping a run's lease while a plain step calls the outside world for longer than the lease."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from types import TracebackType

from django.db import connection

from durable.errors import LeaseLost
from durable.persistence import store

logger = logging.getLogger("durable.runtime.lease_keeper")


class LeaseKeeper:
    """While the block runs, a thread with its own database connection renews the run's lease
    every third of `ttl`, with the owner check of `store.fence`, and closes that connection
    when the block ends. Renewal stops for good once the lease is found lost: the step's
    result is then refused at write time by the executor's fence, like any stale executor's.

    A renewal that fails for another reason (the database away, the connection dropped) closes
    the connection and is tried again on a new one at the next tick: the lease is only lost if
    another executor takes it meanwhile. `renewed_at` is when (monotonic) the lease was last
    known ours."""

    def __init__(self, run_id: str, owner: str, ttl: dt.timedelta) -> None:
        self.run_id = run_id
        self.owner = owner
        self.ttl = ttl
        self.lost = False
        self.renewed_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease keeper {run_id}"[:60], daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _keep(self) -> None:
        interval = self.ttl.total_seconds() / 3
        try:
            while not self._stop.wait(interval):
                try:
                    store.fence(self.run_id, self.owner, self.ttl)  # autocommit: one UPDATE
                except LeaseLost:
                    self.lost = True
                    logger.warning(
                        "run %s: lease lost while a step ran; its result will be dropped",
                        self.run_id,
                    )
                    return
                except Exception:
                    logger.exception("run %s: lease renewal failed; trying again", self.run_id)
                    # This thread's connection skips Django's per-request health checks: a
                    # dropped one would fail every renewal until the step ends.
                    connection.close()
                    continue
                self.renewed_at = time.monotonic()
        finally:
            connection.close()  # this thread's own connection
