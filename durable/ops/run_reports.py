"""Operators' views of the engine (run lists, one run's timeline, engine status) and their
cancel and resume of a run.

Used by the `workflows` management command and the health endpoints. `cancel_run` and
`resume_run` go through `durable.engine.cancel` and `recovery.resume` like every other cancel and
resume; everything else only reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet

from durable import conf, engine
from durable.core.commands import Step
from durable.errors import DurableError
from durable.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    BlockedKind,
    CheckpointStatus,
    EngineHeartbeat,
    RunStatus,
    StepCheckpoint,
    WorkflowRun,
    WorkflowSignal,
)
from durable.ops import recovery
from durable.persistence import heartbeats, store
from durable.transport import dispatch

# `--status` accepts a run status or one of these groups.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "active": tuple(ACTIVE_STATUSES),
    "finished": tuple(FINISHED_STATUSES),
}
STATUS_CHOICES = [*RunStatus.values, *STATUS_GROUPS]


class AlreadyFinished(DurableError):
    """The run asked to be cancelled had already finished."""


# --- runs ---------------------------------------------------------------------------------------


def overdue_by(run: WorkflowRun, now: dt.datetime) -> float | None:
    """How many seconds past its wake-up time an active run is at `now`, if that is more than
    OVERDUE_SECONDS (the margin a healthy engine stays within); None otherwise."""
    if run.status not in ACTIVE_STATUSES or run.wake_at is None:
        return None
    late = (now - run.wake_at).total_seconds()
    return late if late > conf.get("OVERDUE_SECONDS") else None


def overdue_runs(runs: QuerySet[WorkflowRun], now: dt.datetime) -> QuerySet[WorkflowRun]:
    """The active runs among `runs` that are overdue at `now` (as `overdue_by` judges)."""
    return runs.filter(
        status__in=ACTIVE_STATUSES, wake_at__lt=now - conf.seconds("OVERDUE_SECONDS")
    )


def list_runs(
    statuses: Sequence[str] = (),
    workflow: str | None = None,
    limit: int = 50,
    *,
    overdue: bool = False,
) -> list[WorkflowRun]:
    """Up to `limit` runs, newest first, whose status is one of `statuses` (run statuses or the
    groups "active" and "finished"; all when empty) and whose workflow is `workflow` (if given);
    with `overdue`, only active runs whose wake-up time is more than OVERDUE_SECONDS past."""
    runs = WorkflowRun.objects.order_by("-created_at", "-id")
    if overdue:
        runs = overdue_runs(runs, store.db_now())
    wanted = {s for status in statuses for s in STATUS_GROUPS.get(status, (status,))}
    if wanted:
        runs = runs.filter(status__in=sorted(wanted))
    if workflow:
        runs = runs.filter(workflow=workflow)
    return list(runs[: max(limit, 0)])


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One run with its step timeline and workflow signals, read at `now` (the engine's clock)."""

    run: WorkflowRun
    checkpoints: list[StepCheckpoint]
    signals: list[WorkflowSignal]
    now: dt.datetime


def run_detail(run_id: str) -> RunDetail:
    """The run `run_id` with its checkpoints by position and its workflow signals in the order
    they were sent; RunNotFound if there is no such run."""
    run = store.get_run(run_id)
    return RunDetail(
        run=run,
        checkpoints=list(StepCheckpoint.objects.filter(run=run).order_by("position")),
        signals=list(WorkflowSignal.objects.filter(run=run).order_by("id")),
        now=store.db_now(),
    )


def cancel_run(run_id: str, reason: str) -> str:
    """Cancel an active run with `durable.engine.cancel` and say so. RunNotFound if there is no
    such run; AlreadyFinished (and nothing changes) if it had finished."""
    if not engine.cancel(run_id, reason):
        run = store.get_run(run_id)
        raise AlreadyFinished(f"run {run_id!r} had already finished ({run.status}); not cancelled")
    return f"cancelled run {run_id!r}: {reason}"


def resume_run(run_id: str, *, inline: bool = False) -> str:
    """Resume a run as an operator does, with `recovery.resume` (a blocked run is replayed
    again; a step whose outcome stayed unknown is tried again, under the same key, with a new
    horizon), and say so. RunNotFound if there is no such run; AlreadyFinished (and nothing
    changes) if it had finished."""
    run = store.get_run(run_id)
    if run.is_finished:
        raise AlreadyFinished(f"run {run_id!r} had already finished ({run.status}); not resumed")
    outcome = recovery.resume([run_id], inline=inline)[run_id]
    return f"resumed run {run_id!r}: {outcome}"


# --- engine status ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartbeatSummary:
    """Heartbeats of one kind of process: how many are fresh, and the age of the newest."""

    alive: int
    last_seen_seconds_ago: float | None


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What /readyz reports: live processes, backlog and active runs, read at one instant."""

    pollers: HeartbeatSummary
    workers: HeartbeatSummary
    runs_by_status: dict[str, int]
    runs_leased: int
    overdue: int
    oldest_overdue_seconds: float | None
    queue_depth: int | None
    blocked: int = 0
    # Of the blocked runs, those whose step's outcome stayed unknown: an operator resumes them.
    blocked_outcome_unknown: int = 0
    calls_in_flight: int = 0


def calls_in_flight(now: dt.datetime) -> int:
    """Plain steps' calls in flight in the whole cluster: runs held under an unexpired lease at
    a plain step whose attempt is recorded and unanswered."""
    return StepCheckpoint.objects.filter(
        status=CheckpointStatus.PENDING,
        kind=Step.kind,
        run__status=RunStatus.RUNNING,
        run__lease_expires_at__gt=now,
    ).count()


def format_backlog(queue_depth: int | None, in_flight: int) -> str:
    """One line: the tasks waiting in the queue (runs waiting for a worker or a step slot) and
    the plain steps' calls in flight."""
    queued = "unknown" if queue_depth is None else str(queue_depth)
    return f"queue: {queued} task(s) waiting; {in_flight} step call(s) in flight"


def engine_status() -> EngineStatus:
    """Heartbeats fresher than HEALTH_STALE_SECONDS, active runs by status, runs under an
    unexpired lease, runs overdue by more than OVERDUE_SECONDS, and the broker's queue depth.

    Every time is the engine's clock (the database's on PostgreSQL), so machines agree. Reads
    only active runs (a partial index covers them), never the finished history."""
    now = store.db_now()
    active = WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES).order_by()
    counts = list(
        active.values("status").annotate(
            n=Count("id"), leased=Count("id", filter=Q(lease_expires_at__gt=now))
        )
    )
    by_status = {row["status"]: row["n"] for row in counts}
    overdue = overdue_runs(active, now).aggregate(n=Count("id"), oldest=Min("wake_at"))
    blocked = WorkflowRun.objects.filter(status=RunStatus.BLOCKED).aggregate(
        n=Count("id"),
        outcome_unknown=Count("id", filter=Q(blocked_kind=BlockedKind.OUTCOME_UNKNOWN)),
    )
    return EngineStatus(
        pollers=_heartbeats(heartbeats.POLLER, now),
        workers=_heartbeats(heartbeats.WORKER, now),
        runs_by_status={status: by_status.get(status, 0) for status in ACTIVE_STATUSES},
        runs_leased=sum(row["leased"] for row in counts),
        overdue=overdue["n"],
        oldest_overdue_seconds=_age(now, overdue["oldest"]),
        queue_depth=dispatch.queue_depth(),
        blocked=blocked["n"],
        blocked_outcome_unknown=blocked["outcome_unknown"],
        calls_in_flight=calls_in_flight(now),
    )


def _heartbeats(kind: str, now: dt.datetime) -> HeartbeatSummary:
    fresh_since = now - conf.seconds("HEALTH_STALE_SECONDS")
    row = EngineHeartbeat.objects.filter(kind=kind).aggregate(
        alive=Count("id", filter=Q(last_seen__gte=fresh_since)), latest=Max("last_seen")
    )
    return HeartbeatSummary(row["alive"], _age(now, row["latest"]))


def _age(now: dt.datetime, moment: dt.datetime | None) -> float | None:
    return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 3)


# --- text ---------------------------------------------------------------------------------------


def format_run_list(runs: Sequence[WorkflowRun], now: dt.datetime | None = None) -> str:
    """A table of runs: id, workflow and version, status, created, next wake-up (how far off,
    and "OVERDUE" past the margin, when `now` is given) or end, error (or why the run is
    blocked)."""
    rows = [
        [
            run.id,
            f"{run.workflow} v{run.workflow_version}",
            run.status,
            _time(run.created_at),
            f"finished {_time(run.finished_at)}" if run.is_finished else _wake(run, now),
            _one_line(_problem(run), 60),
        ]
        for run in runs
    ]
    header = ["RUN", "WORKFLOW", "STATUS", "CREATED", "NEXT / FINISHED", "ERROR"]
    return _table(header, rows) + f"\n{len(rows)} run(s)"


def format_run_detail(detail: RunDetail) -> str:
    """The run's fields, lease and wake-up time, its step timeline and its workflow signals."""
    run, now = detail.run, detail.now
    fields = [
        ("run", run.id),
        ("workflow", run.workflow),
        ("status", run.status),
        ("args", _json(run.args)),
        ("result", _json(run.result) if run.result is not None else "-"),
        ("version", str(run.workflow_version)),
        ("error", run.error or "-"),
        ("blocked", _blocked(run)),
        ("created", _time(run.created_at)),
        ("updated", _time(run.updated_at)),
        ("finished", _time(run.finished_at)),
        ("lease", _lease(run, now)),
        ("wake-up", _wake(run, now)),
        ("enqueued", _time(run.enqueued_at)),
    ]
    lines = [f"{name:<9} {value}" for name, value in fields]
    steps = [
        [
            str(cp.position),
            cp.name,
            cp.kind,
            cp.status,
            str(cp.attempts),
            _time(cp.deadline),
            _time(cp.started_at),
            _time(cp.finished_at),
            _one_line(cp.error, 100) if cp.error else _one_line(_json(cp.result), 100),
        ]
        for cp in detail.checkpoints
    ]
    lines += ["", f"Step timeline ({len(steps)})"]
    header = ["POS", "NAME", "KIND", "STATUS", "ATTEMPTS", "DEADLINE", "STARTED", "FINISHED",
              "RESULT / ERROR"]  # fmt: skip
    lines.append(_table(header, steps) if steps else "  (none)")
    signals = [
        [
            str(sig.pk),
            sig.name,
            "accepted" if sig.accepted else f"rejected ({sig.reason})",
            _time(sig.sent_at),
            "-"
            if sig.consumed_position is None
            else f"#{sig.consumed_position} at {_time(sig.consumed_at)}",
            _one_line(_json(sig.payload), 60),
        ]
        for sig in detail.signals
    ]
    lines += ["", f"Workflow signals ({len(signals)})"]
    header = ["ID", "NAME", "VERDICT", "SENT", "CONSUMED", "PAYLOAD"]
    lines.append(_table(header, signals) if signals else "  (none)")
    return "\n".join(lines)


def _problem(run: WorkflowRun) -> str:
    return f"blocked: {run.blocked_reason}" if run.status == RunStatus.BLOCKED else run.error


def _blocked(run: WorkflowRun) -> str:
    if not run.blocked_reason:
        return "-"
    if run.status == RunStatus.BLOCKED:
        return f"{run.blocked_reason} (since {_time(run.blocked_at)})"
    return f"no longer; was at {_time(run.blocked_at)}: {run.blocked_reason}"


def _lease(run: WorkflowRun, now: dt.datetime) -> str:
    if not run.lease_owner or run.lease_expires_at is None:
        return "none"
    expiry = run.lease_expires_at
    return f"{run.lease_owner} until {_time(expiry)} ({_relative(expiry, now)})"


def _wake(run: WorkflowRun, now: dt.datetime | None = None) -> str:
    if run.is_finished:
        return "-"
    when = "now" if run.wake_at is None else _time(run.wake_at)
    if run.wake_at is not None and now is not None:
        late = overdue_by(run, now) is not None
        when += f" ({_relative(run.wake_at, now)}{', OVERDUE' if late else ''})"
    if run.waiting_signal:
        when += f", or on workflow signal {run.waiting_signal!r}"
    return when


def _relative(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = (moment - now).total_seconds()
    return f"in {seconds:.1f}s" if seconds >= 0 else f"{-seconds:.1f}s ago"


def timestamp(moment: dt.datetime | None) -> str:
    """`moment` in ISO 8601, UTC, to the millisecond ("2026-11-29T17:45:03.120Z"); "-" for None."""
    return _time(moment)


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """The time from `start` to `end` in milliseconds below 10 s, else seconds; "-" if either
    is missing."""
    if start is None or end is None:
        return "-"
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.1f} ms" if abs(seconds) < 10 else f"{seconds:.3f} s"


def _time(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
