"""One structured log line per run transition: `run_transition run=... workflow=... status=...`.

key=value pairs, values quoted only when they hold spaces or quotes, so that a log search or a
line-oriented parser can follow a run from start to end."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import transaction

from durable.runtime import metrics

logger = logging.getLogger("durable.runs")

_ON_COMMIT: ContextVar[bool] = ContextVar("durable_runlog_on_commit", default=False)


@contextlib.contextmanager
def on_commit() -> Iterator[None]:
    """The transitions made inside are logged and counted once the surrounding transaction
    commits, never if it rolls back: a start inside its caller's transaction (whose run may
    never exist) is told to operators only once it does."""
    token = _ON_COMMIT.set(True)
    try:
        yield
    finally:
        _ON_COMMIT.reset(token)


def transition(run_id: str, workflow: str, status: str, **fields: Any) -> None:
    """Log that run `run_id` of `workflow` is now `status`, with `fields` (None values left
    out). A failed or blocked run logs at ERROR, every other transition at INFO. Counted in the
    metrics. Inside `on_commit`, both wait for the transaction's commit."""
    if _ON_COMMIT.get():
        transaction.on_commit(functools.partial(_record, run_id, workflow, status, fields))
        return
    _record(run_id, workflow, status, fields)


def _record(run_id: str, workflow: str, status: str, fields: dict[str, Any]) -> None:
    metrics.run_transition(workflow, str(status))
    level = logging.ERROR if status in {"failed", "blocked"} else logging.INFO
    if not logger.isEnabledFor(level):
        return
    pairs = {"run": run_id, "workflow": workflow, "status": status, **fields}
    text = " ".join(f"{key}={_value(value)}" for key, value in pairs.items() if value is not None)
    logger.log(level, "run_transition %s", text)


# A value with any of these is written as a JSON string, so each line parses as key=value pairs.
_NEEDS_QUOTES = re.compile(r"[\s\"'=]")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text)
    return text
