"""A django-q2 worker process's own heartbeat: written every HEARTBEAT_SECONDS by a thread of
the process, whatever tasks it runs, so that every live worker is seen live whatever the
cluster's size (the poller's probes reach one worker each), and the runs blocked for want of a
workflow version a live worker has are resumed whenever they were blocked."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any

from django.db import connection

from durable import conf
from durable.ops import recovery
from durable.persistence import heartbeats

logger = logging.getLogger("durable.ops.worker_heartbeat")


class WorkerHeartbeat:
    """A daemon thread that, every HEARTBEAT_SECONDS until `stop`, writes this process's worker
    heartbeat (with the workflow versions it has) and resumes the runs blocked because no live
    worker had their version, once one has. A failed beat (database away) is logged and tried
    again at the next; the thread's connection is closed after each beat."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat_until_stopped, name="durable worker heartbeat", daemon=True
        )

    def start(self) -> WorkerHeartbeat:
        """Start beating; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating, and wait for the thread to end."""
        self._stop.set()
        self._thread.join()

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(conf.get("HEARTBEAT_SECONDS")):
            try:
                heartbeats.beat(heartbeats.WORKER)
                recovery.resume_versions_now_live()
            except Exception as exc:
                logger.warning("worker heartbeat failed; beating again: %s", exc)
            finally:
                connection.close()  # this thread's own


def on_worker_spawn(sender: Any = None, **kwargs: Any) -> None:
    """django-q2's post_spawn signal, in each new worker process: what a worker's start does
    (`recovery.on_worker_start`), then its own heartbeat thread, for the process's lifetime.
    django-q2's worker loop run in a process the cluster did not spawn (a test's) gets no
    thread: it would outlive the loop and beat for a process that is no worker."""
    recovery.on_worker_start(sender, **kwargs)
    if multiprocessing.current_process().name != "MainProcess":
        WorkerHeartbeat().start()
