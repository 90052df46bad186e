"""Engine health: heartbeats of pollers and django-q2 workers, and the /healthz and /readyz views.

Why heartbeats of our own: django-q2 saves its cluster status (`Stat`) through the broker. With the
Redis broker that is a key every machine can read; with the ORM broker it is Django's cache, which
is each process's own memory unless a shared cache is configured, so a web process never sees the
cluster. A row in the engine's database is visible to every process on every machine either way.

A poller writes its own heartbeat and, as often, enqueues a probe task; the django-q2 worker that
runs the probe writes a worker heartbeat. A fresh worker heartbeat therefore proves the whole
path a run's task takes: broker, cluster, worker, database.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from durable import conf
from durable.core import registry
from durable.models import EngineHeartbeat
from durable.ops import logfilters, run_reports
from durable.persistence import store
from durable.runtime import blocking
from durable.transport import dispatch

logger = logging.getLogger("durable.ops.health")

POLLER = "poller"
WORKER = "worker"
PROBE_TASK = "durable.ops.health.worker_probe"
# While probes go unanswered (no cluster is running) one is sent this often at most, so a stopped
# cluster does not come back to a queue full of probes.
PROBE_RETRY_SECONDS = 60.0

_HOST = socket.gethostname()[:255]


# --- heartbeats ---------------------------------------------------------------------------------


def beat(kind: str) -> dt.datetime:
    """Record that this process (`kind` on this host, this pid) is alive now, by the engine's
    clock; returns that time. One row per process, updated in place. A worker's row also names
    the workflow versions it can advance."""
    now = store.db_now()
    pid = os.getpid()
    values: dict[str, Any] = {"last_seen": now}
    if kind == WORKER:
        values["workflows"] = registry.registered()
    if EngineHeartbeat.objects.filter(kind=kind, host=_HOST, pid=pid).update(**values):
        return now
    try:
        with transaction.atomic():
            EngineHeartbeat.objects.create(kind=kind, host=_HOST, pid=pid, **values)
    except IntegrityError:  # a recycled pid, or a concurrent first beat
        EngineHeartbeat.objects.filter(kind=kind, host=_HOST, pid=pid).update(**values)
    return now


def worker_probe() -> str:
    """The django-q2 task a poller enqueues: the worker that runs it records its heartbeat."""
    beat(WORKER)
    return "alive"


def send_worker_probe() -> None:
    """Enqueue one `worker_probe` task on the engine's django-q2 queue (logged at DEBUG)."""
    with logfilters.sending_probe():
        dispatch.enqueue_task(PROBE_TASK, "durable heartbeat probe")
    logger.debug("worker probe sent")


class PollerHeartbeat:
    """Called on every poll; at most every HEARTBEAT_SECONDS it writes the poller's heartbeat,
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
        now = beat(POLLER)
        blocking.resume_versions_now_live()
        sent = self._probe_sent_at
        answered = (
            sent is None
            or EngineHeartbeat.objects.filter(kind=WORKER, last_seen__gte=sent).exists()
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
    if status.blocked:
        problems.append(
            f"{status.blocked} workflow run(s) blocked: the deployed code cannot replay them"
        )
    return problems
