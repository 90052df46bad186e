"""What each kind of command costs the database per advance: SQL statements and commits, pinned,
so a change to how the executor is built cannot add a round trip unnoticed; and a workflow
signal's answer comes from the one read of the run its verdict needs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable
from durable import WorkflowContext, workflow
from durable.models import WorkflowRun
from durable.persistence import store
from durable.runtime.executor import AdvanceOutcome, advance
from tests.durable.example_workflows import FLAKY_CALLS

pytestmark = pytest.mark.django_db(transaction=True)


@workflow("every_command_kind")
def every_command_kind(ctx: WorkflowContext) -> Generator[Any, Any, Any]:
    """One command of each kind that the other example workflows do not yield."""
    patched = yield ctx.patched("counted")
    yield ctx.sleep(0)
    started = yield ctx.now()
    return {"patched": patched, "started": started.isoformat()}


@contextlib.contextmanager
def counted() -> Iterator[dict[str, int]]:
    """Statements sent and transactions committed by this thread's connection in the block."""
    counts = {"statements": 0, "commits": 0}
    commit = connection.commit

    def counting_commit() -> None:
        counts["commits"] += 1
        commit()

    connection.commit = counting_commit
    try:
        with CaptureQueriesContext(connection) as queries:
            yield counts
    finally:
        del connection.commit
    counts["statements"] = len(queries.captured_queries)


def cost(action: Callable[[], Any]) -> tuple[int, int]:
    with counted() as counts:
        action()
    return counts["statements"], counts["commits"]


def advanced(run_id: str, expected: AdvanceOutcome) -> Callable[[], None]:
    def act() -> None:
        assert advance(run_id) is expected

    return act


# (statements, commits), the same on SQLite and PostgreSQL: a change here is a change to the hot
# path, to be measured.
COSTS: dict[str, tuple[int, int]] = {
    "park at a signal wait": (7, 1),
    "signal received, run finished": (8, 1),
    "wait timed out, transaction step, run finished": (11, 1),
    "eager start parked at its wait": (7, 1),
    # A plain step's result commits at once (a transient error while recording it is retried in
    # place instead of running the step again): one commit and its fence more than before.
    "transaction steps, plain step, clock, wait": (25, 3),
    "plain step failed, retry scheduled": (10, 2),
    "patch, sleep, clock": (8, 1),
}


def test_the_statements_and_commits_of_each_kind_of_advance() -> None:
    measured: dict[str, tuple[int, int]] = {}

    durable.start("cost-park", "send_with_undo", "hello", 60)
    measured["park at a signal wait"] = cost(advanced("cost-park", AdvanceOutcome.SUSPENDED))
    assert durable.send_signal("cost-park", "undo", "stop").accepted
    measured["signal received, run finished"] = cost(advanced("cost-park", AdvanceOutcome.FINISHED))

    durable.start("cost-confirm", "send_with_undo", "hello", 0)
    measured["wait timed out, transaction step, run finished"] = cost(
        advanced("cost-confirm", AdvanceOutcome.FINISHED)
    )

    measured["eager start parked at its wait"] = cost(
        lambda: durable.start("cost-eager", "send_with_undo", "hello", 60, eager=True)
    )
    assert WorkflowRun.objects.get(pk="cost-eager").status == "waiting"

    durable.start("cost-kinds", "many_steps", 2, 0, 0)
    measured["transaction steps, plain step, clock, wait"] = cost(
        advanced("cost-kinds", AdvanceOutcome.FINISHED)
    )

    FLAKY_CALLS.pop("cost-retry", None)
    durable.start("cost-retry", "flaky", 1, 3)
    measured["plain step failed, retry scheduled"] = cost(
        advanced("cost-retry", AdvanceOutcome.SUSPENDED)
    )

    durable.start("cost-patch", "every_command_kind")
    measured["patch, sleep, clock"] = cost(advanced("cost-patch", AdvanceOutcome.FINISHED))

    assert measured == COSTS
    assert WorkflowRun.objects.get(pk="cost-patch").result["patched"] is True


def run_row_reads(queries: CaptureQueriesContext) -> list[str]:
    table = f'FROM "{WorkflowRun._meta.db_table}"'
    return [query["sql"] for query in queries.captured_queries if table in query["sql"]]


def test_sending_a_signal_reads_the_run_once_and_answers_from_that_read() -> None:
    durable.start("cost-signal", "send_with_undo", "hello", 60)
    assert advance("cost-signal") is AdvanceOutcome.SUSPENDED
    with CaptureQueriesContext(connection) as queries:
        accepted = durable.send_signal("cost-signal", "undo", "stop")
    assert len(run_row_reads(queries)) == 1, run_row_reads(queries)  # the row lock
    assert accepted.accepted and accepted.run.status == "pending"
    assert accepted.run == durable.get("cost-signal")

    assert advance("cost-signal") is AdvanceOutcome.FINISHED
    with CaptureQueriesContext(connection) as queries:
        rejected = durable.send_signal("cost-signal", "undo", "late")
    assert len(run_row_reads(queries)) == 1, run_row_reads(queries)
    assert not rejected.accepted and rejected.run == durable.get("cost-signal")


def test_a_sender_that_decides_the_timeout_answers_with_the_run_it_woke(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    durable.start("cost-late", "send_with_undo", "hello", 60)
    assert advance("cost-late") is AdvanceOutcome.SUSPENDED
    deadline = WorkflowRun.objects.get(pk="cost-late").wake_at
    monkeypatch.setattr(store, "db_now", lambda: deadline)
    with CaptureQueriesContext(connection) as queries:
        late = durable.send_signal("cost-late", "undo", "late")
    assert len(run_row_reads(queries)) == 1, run_row_reads(queries)
    assert (late.accepted, late.reason, late.run.status) == (False, "wait_timed_out", "pending")
    assert late.run == durable.get("cost-late")
