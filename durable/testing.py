"""Test helpers for projects that use durable: catch an incompatible workflow change in CI.

Record the history of a real run once (`python manage.py workflows export RUN_ID > file.json`,
or `export_history`), commit it as a fixture, and keep a test that calls `assert_replays` on it:
a change that would block runs of that shape then fails the test instead of a deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils.dateparse import parse_datetime

from durable.models import StepCheckpoint
from durable.ops.replaycheck import replay_problem
from durable.persistence import store

__all__ = ["assert_replays", "export_history", "history_problem"]

HistoryFixture = dict[str, Any]


def export_history(run_id: str) -> HistoryFixture:
    """The run's workflow, version, arguments and checkpoints as a JSON-ready fixture."""
    run = store.get_run(run_id)
    checkpoints = StepCheckpoint.objects.filter(run_id=run_id).order_by("position")
    return {
        "run_id": run.id,
        "workflow": run.workflow,
        "version": run.workflow_version,
        "args": run.args,
        "checkpoints": [
            {
                "position": cp.position,
                "name": cp.name,
                "kind": cp.kind,
                "status": cp.status,
                "result": cp.result,
                "error": cp.error,
                "attempts": cp.attempts,
                "deadline": cp.deadline.isoformat() if cp.deadline else None,
            }
            for cp in checkpoints
        ],
    }


def history_problem(fixture: HistoryFixture | str | Path) -> str | None:
    """Why the code in this process could not replay the recorded history (a fixture, or the
    path of its JSON file), or None. Runs nothing."""
    if not isinstance(fixture, dict):
        fixture = json.loads(Path(fixture).read_text())
    history = {
        cp["position"]: store.recorded(
            cp["name"],
            cp["kind"],
            cp["status"],
            cp["result"],
            cp.get("error", ""),
            cp.get("attempts", 1),
            parse_datetime(cp["deadline"]) if cp.get("deadline") else None,
        )
        for cp in fixture["checkpoints"]
    }
    return replay_problem(
        fixture["workflow"],
        fixture.get("version", 1),
        fixture.get("run_id", "fixture"),
        fixture["args"],
        history,
    )


def assert_replays(fixture: HistoryFixture | str | Path) -> None:
    """Fail (AssertionError with the reason) unless the code in this process can replay the
    recorded history as the engine would: same commands, kinds and names, the version
    registered, the arguments still binding."""
    problem = history_problem(fixture)
    if problem is not None:
        raise AssertionError(f"the recorded history no longer replays: {problem}")
