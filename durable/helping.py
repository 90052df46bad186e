"""Backpressure: when the workers fall behind, the processes that start runs help them.

With DURABLE["HELP_OVERDUE_AFTER_SECONDS"] above 0, a process that has just started a run (after
its transaction commits) advances one run whose wake-up time passed more than that long ago, by
the database's clock: the oldest. Starts then slow down by about the work of one run each, which
is what lets the workers catch up, instead of confirmations falling further behind while starts
take all the CPU (a thread pool's "caller runs" policy). It advances only database work (waits,
timers, transactional steps, the end) under the run's lease, as a worker would; a run that
reaches a plain step is handed back to the workers, so a caller never waits on the outside world
for another run.

While nothing is overdue a process looks at most once per DURABLE["POLL_INTERVAL_SECONDS"] (one
indexed query); once it found an overdue run it looks on every start until it finds none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time

from durable import conf, metrics, store
from durable.executor import Advanced, advance

logger = logging.getLogger("durable.helping")


@dataclasses.dataclass
class _Lookout:
    behind: bool = False
    next_look: float = -1e9  # time.monotonic()


_lookout = _Lookout()
_lock = threading.Lock()


def enabled() -> bool:
    """Whether starts help with overdue runs (DURABLE["HELP_OVERDUE_AFTER_SECONDS"] > 0)."""
    return conf.get("HELP_OVERDUE_AFTER_SECONDS") > 0


def help_with_one_overdue_run() -> Advanced | None:
    """If it is time to look and a run is overdue, advance the oldest one's database work and
    return what that did; None if this process did not look or found nothing. Never raises: an
    error is logged and the run stays with the workers."""
    overdue_by = conf.get("HELP_OVERDUE_AFTER_SECONDS")
    if overdue_by <= 0 or not _time_to_look():
        return None
    try:
        run_id = store.oldest_overdue_run(dt.timedelta(seconds=overdue_by))
        _note(run_id is not None, overdue_by)
        if run_id is None:
            return None
        outcome = advance(run_id, database_only=True)
    except Exception:
        logger.exception("helping with an overdue run failed; the workers will advance it")
        return None
    metrics.overdue_run_helped(outcome.value)
    return outcome


def _time_to_look() -> bool:
    now = time.monotonic()
    with _lock:
        if not _lookout.behind and now < _lookout.next_look:
            return False
        _lookout.next_look = now + conf.get("POLL_INTERVAL_SECONDS")
        return True


def _note(behind: bool, overdue_by: float) -> None:
    """Remember whether the workers are behind, and tell the operator when that changes."""
    with _lock:
        changed, _lookout.behind = behind != _lookout.behind, behind
    if changed and behind:
        logger.warning(
            "runs are overdue by more than %g s: the workers are behind, and this process's "
            "starts now also advance overdue runs (backpressure)",
            overdue_by,
        )
    elif changed:
        logger.info("no run is overdue by more than %g s: starts no longer help", overdue_by)
