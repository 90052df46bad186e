"""The heartbeats of pollers and django-q2 workers: rows that say which processes are alive and
which workflow versions the live workers can advance.

Why heartbeats of our own: django-q2 saves its cluster status (`Stat`) through the broker. With the
Redis broker that is a key every machine can read; with the ORM broker it is Django's cache, which
is each process's own memory unless a shared cache is configured, so a web process never sees the
cluster. A row in the engine's database is visible to every process on every machine either way.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from django.db import IntegrityError, transaction

from durable import conf
from durable.core import registry
from durable.models import EngineHeartbeat
from durable.persistence import store

POLLER = "poller"
WORKER = "worker"

_HOST = socket.gethostname()[:255]


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


def live_versions() -> set[str]:
    """The workflow versions ("name@version") of the workers seen within HEALTH_STALE_SECONDS."""
    fresh_since = store.db_now() - conf.seconds("HEALTH_STALE_SECONDS")
    seen = EngineHeartbeat.objects.filter(kind=WORKER, last_seen__gte=fresh_since)
    return {name for names in seen.values_list("workflows", flat=True) for name in names or []}
