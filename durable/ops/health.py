"""Engine health: what a poller does every HEARTBEAT_SECONDS besides polling (its heartbeat, a
probe of the workers, resuming runs blocked for a version a live worker now has), and the /healthz
and /readyz views.

A poller writes its own heartbeat and, as often, enqueues a probe task; the django-q2 worker that
runs the probe (durable.tasks.worker_probe) writes a worker heartbeat, proving the whole path a
run's task takes: broker, cluster, worker, database. A probe reaches one worker, so each worker
process also beats on its own (durable/ops/worker_heartbeat.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from durable import conf
from durable.models import EngineHeartbeat
from durable.ops import logfilters, recovery, run_reports
from durable.persistence import heartbeats
from durable.transport import dispatch

logger = logging.getLogger("durable.ops.health")

# While probes go unanswered (no cluster is running) one is sent this often at most, so a stopped
# cluster does not come back to a queue full of probes.
PROBE_RETRY_SECONDS = 60.0


# --- the poller's heartbeat ---------------------------------------------------------------------


def send_worker_probe() -> None:
    """Enqueue one `durable.tasks.worker_probe` task on the engine's django-q2 queue (logged at
    DEBUG)."""
    with logfilters.sending_probe():
        dispatch.enqueue_task(dispatch.PROBE_TASK_PATH, "durable heartbeat probe")
    logger.debug("worker probe sent")


class PollerHeartbeat:
    """Called after every poll; at most every HEARTBEAT_SECONDS it writes the poller's heartbeat,
    resumes the runs blocked for a workflow version that a live worker now has, and enqueues a
    worker probe (but while the last probe is unanswered, only every
    PROBE_RETRY_SECONDS)."""

    def __init__(self) -> None:
        self._next_beat = 0.0
        self._probe_sent_at: dt.datetime | None = None

    def tick(self) -> None:
        if time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + conf.get("HEARTBEAT_SECONDS")
        now = heartbeats.beat(heartbeats.POLLER)
        recovery.resume_versions_now_live()
        sent = self._probe_sent_at
        answered = (
            sent is None
            or EngineHeartbeat.objects.filter(kind=heartbeats.WORKER, last_seen__gte=sent).exists()
        )
        if answered or (now - sent).total_seconds() >= PROBE_RETRY_SECONDS:
            send_worker_probe()
            self._probe_sent_at = now


# --- views --------------------------------------------------------------------------------------


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 `{"status": "ok"}` when the database answers, else 503 with a reason.
    Never raises: a load balancer gets JSON, not a 500 page."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("healthz: database unreachable", exc_info=True)
        return JsonResponse({"status": "error", "detail": "database unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database answers, a poller and a django-q2 worker were seen
    within HEALTH_STALE_SECONDS, and no active run is overdue (its wake-up time more than
    OVERDUE_SECONDS past); else 503 with a `detail` naming each problem by counts and ages. Both
    carry the backlog: queue depth, active runs by status, overdue runs."""
    try:
        status = run_reports.engine_status()
    except Exception as exc:
        logger.warning("readyz: engine status unavailable", exc_info=True)
        detail = "database unreachable" if isinstance(exc, DatabaseError) else "status unavailable"
        return JsonResponse({"status": "error", "detail": detail}, status=503)
    problems = _problems(status)
    body: dict[str, Any] = {"status": "error" if problems else "ok"}
    if problems:
        body["detail"] = "; ".join(problems)
    body |= {
        "pollers": {
            "alive": status.pollers.alive,
            "last_seen_seconds_ago": status.pollers.last_seen_seconds_ago,
        },
        "workers": {
            "alive": status.workers.alive,
            "last_seen_seconds_ago": status.workers.last_seen_seconds_ago,
            "runs_leased": status.runs_leased,
        },
        "queue_depth": status.queue_depth,
        "runs": {
            **status.runs_by_status,
            "overdue": status.overdue,
            "oldest_overdue_seconds": status.oldest_overdue_seconds,
            "blocked": status.blocked,
            "blocked_outcome_unknown": status.blocked_outcome_unknown,
        },
    }
    return JsonResponse(body, status=503 if problems else 200)


def _problems(status: run_reports.EngineStatus) -> list[str]:
    stale = conf.get("HEALTH_STALE_SECONDS")
    problems = []
    if not status.pollers.alive:
        problems.append(f"no durable poller seen in the last {stale:g}s")
    # A worker busy on a long backlog may not reach a probe in time; holding a lease (renewed at
    # every checkpoint) shows it is alive just as well.
    if not status.workers.alive and not status.runs_leased:
        problems.append(f"no django-q2 worker seen in the last {stale:g}s")
    if status.overdue:
        problems.append(
            f"{status.overdue} run(s) overdue by more than {conf.get('OVERDUE_SECONDS'):g}s "
            f"(oldest {status.oldest_overdue_seconds:.1f}s past its wake-up time)"
        )
    unreplayable = status.blocked - status.blocked_outcome_unknown
    if unreplayable:
        problems.append(
            f"{unreplayable} workflow run(s) blocked: the deployed code cannot replay them"
        )
    if status.blocked_outcome_unknown:
        problems.append(
            f"{status.blocked_outcome_unknown} workflow run(s) blocked: a step's outcome stayed "
            "unknown past its unknown_for (an operator must resume them)"
        )
    return problems
