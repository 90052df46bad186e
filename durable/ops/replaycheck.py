"""Replay recorded histories against the code on disk, executing nothing, to find the runs a
deploy would block (`manage.py workflows replay-check`, `durable.testing.assert_replays`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, IntegerField, Value, When
from django.utils.dateparse import parse_datetime

from durable.core.commands import Command
from durable.core.registry import instantiate
from durable.core.replay import Diverged, Recorded, Suspend, drive
from durable.errors import WorkflowArgumentsMismatch, WorkflowNotRegistered
from durable.models import ACTIVE_STATUSES, RunStatus, WorkflowRun
from durable.persistence import store


def replay_problem(
    workflow: str, version: int, run_id: str, args: list[Any], history: Mapping[int, Recorded]
) -> str | None:
    """Why the code in this process could not replay this history (as the engine would block
    the run), or None if it replays. Runs no command: replay stops at the first command without
    a finished checkpoint."""
    try:
        generator = instantiate(workflow, run_id, list(args), version)
    except WorkflowNotRegistered:
        return f"no worker has {workflow} v{version}"
    except WorkflowArgumentsMismatch as exc:
        return str(exc)
    outcome = drive(generator, history, _stop)
    return str(outcome.error) if isinstance(outcome, Diverged) else None


def _stop(position: int, command: Command, recorded: Recorded | None) -> Suspend:
    return Suspend(None, "replay check: the recorded history ends here")


@dataclass(frozen=True, slots=True)
class CheckedRun:
    run_id: str
    workflow: str
    version: int
    status: str
    problem: str | None


def check_runs(
    since: dt.datetime | None = None, limit: int = 500, workflow: str | None = None
) -> list[CheckedRun]:
    """Replay the stored histories of up to `limit` runs created since `since` (of `workflow`
    if given): unfinished and blocked runs first, then the newest. Runs whose history was
    pruned are skipped."""
    unfinished = [*ACTIVE_STATUSES, RunStatus.BLOCKED]
    runs = WorkflowRun.objects.annotate(
        finished=Case(
            When(status__in=unfinished, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("finished", "-created_at")
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    if workflow:
        runs = runs.filter(workflow=workflow)
    checked = []
    for run in runs[: max(limit, 0)]:
        history = store.load_history(run.id)
        if not history and run.is_finished:
            continue
        problem = replay_problem(run.workflow, run.workflow_version, run.id, run.args, history)
        checked.append(CheckedRun(run.id, run.workflow, run.workflow_version, run.status, problem))
    return checked


_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`30m`, `24h`, `7d` (before `now`) or an ISO 8601 date-time; ValueError otherwise."""
    ago = _AGO.match(text.strip())
    if ago:
        return now - dt.timedelta(**{_UNIT[ago.group(2)]: float(ago.group(1))})
    moment = parse_datetime(text.strip())
    if moment is None:
        raise ValueError(f"--since wants 30m, 24h, 7d or an ISO date-time, not {text!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
