"""Retention: forget the history of runs that finished long ago.

A finished run's step checkpoints and workflow signals are only needed to replay it, and it will
never be replayed again. They are deleted once the run finished more than RETENTION_DAYS ago. The
run row itself (id, status, result) is deleted too, unless another model protects it
(`on_delete=PROTECT` or `RESTRICT`, such as an order's purchase): then the row stays, so the
records that point at it keep their result.

Schedule it daily: a cron line running `manage.py prune_workflows`, or a django-q2 schedule of
`durable.tasks.prune_workflows`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from durable import conf
from durable.models import (
    FINISHED_STATUSES,
    EngineHeartbeat,
    StepCheckpoint,
    WorkflowRun,
    WorkflowSignal,
)

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune deleted (or, for a dry run, would delete)."""

    cutoff: dt.datetime
    dry_run: bool
    runs_examined: int
    checkpoints: int
    signals: int
    runs_deleted: int
    runs_kept: int
    heartbeats: int


def prune(
    older_than: dt.timedelta | None = None,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> PruneReport:
    """Delete the step checkpoints and workflow signals of runs that finished before
    now - `older_than` (default RETENTION_DAYS), and those runs' rows where nothing protects
    them; also heartbeats not seen since the cutoff.

    Never touches an active run, a run that finished after the cutoff, or a protected run's row.
    Works in batches of `batch_size` runs, one transaction each, so it can run beside live
    traffic and be interrupted and run again. A dry run counts and changes nothing."""
    if older_than is None:
        older_than = dt.timedelta(days=conf.get("RETENTION_DAYS"))
    cutoff = timezone.now() - older_than
    unprotected = _unprotected()
    candidates = WorkflowRun.objects.filter(
        status__in=FINISHED_STATUSES, finished_at__lt=cutoff
    ).filter(
        # Runs already pruned down to a protected row are not examined again.
        Exists(StepCheckpoint.objects.filter(run=OuterRef("pk")))
        | Exists(WorkflowSignal.objects.filter(run=OuterRef("pk")))
        | unprotected
    )
    if dry_run:
        runs = candidates.values("pk")
        deletable = candidates.filter(unprotected).count()
        examined = candidates.count()
        return PruneReport(
            cutoff, True, examined,
            StepCheckpoint.objects.filter(run__in=runs).count(),
            WorkflowSignal.objects.filter(run__in=runs).count(),
            deletable, examined - deletable,
            EngineHeartbeat.objects.filter(last_seen__lt=cutoff).count(),
        )  # fmt: skip
    totals = {"examined": 0, "checkpoints": 0, "signals": 0, "deleted": 0}
    last_pk = ""
    while True:
        ids = list(
            candidates.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        last_pk = ids[-1]
        batch = _prune_batch(ids, unprotected)
        for key, value in batch.items():
            totals[key] += value
    heartbeats, _ = EngineHeartbeat.objects.filter(last_seen__lt=cutoff).delete()
    return PruneReport(
        cutoff, False, totals["examined"], totals["checkpoints"], totals["signals"],
        totals["deleted"], totals["examined"] - totals["deleted"], heartbeats,
    )  # fmt: skip


def _prune_batch(ids: list[str], unprotected: Q) -> dict[str, int]:
    with transaction.atomic():
        checkpoints, _ = StepCheckpoint.objects.filter(run_id__in=ids).delete()
        signals, _ = WorkflowSignal.objects.filter(run_id__in=ids).delete()
        try:
            with transaction.atomic():
                _, per_model = WorkflowRun.objects.filter(unprotected, pk__in=ids).delete()
            deleted = per_model.get(WorkflowRun._meta.label, 0)
        except (models.ProtectedError, models.RestrictedError):
            # A reference appeared since the filter ran: keep the rows, the history is gone.
            deleted = 0
    return {
        "examined": len(ids),
        "checkpoints": checkpoints,
        "signals": signals,
        "deleted": deleted,
    }


def _unprotected() -> Q:
    """Runs that no PROTECT or RESTRICT foreign key points at, whichever app declares it (the
    engine does not know the models that reference its runs)."""
    condition = Q(pk__isnull=False)  # true of every row: nothing protects runs
    for relation in WorkflowRun._meta.related_objects:
        if relation.on_delete in (models.PROTECT, models.RESTRICT):
            referencing = relation.related_model._base_manager.filter(
                **{relation.field.name: OuterRef("pk")}
            )
            condition &= ~Exists(referencing)
    return condition
