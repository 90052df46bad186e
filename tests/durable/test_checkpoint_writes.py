"""A checkpoint is written in one statement: the lease already makes the advancing transaction
the run's only writer, so no locking read (nor the savepoints of update_or_create) is needed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable
from durable.models import CheckpointStatus, StepCheckpoint
from durable.runtime.executor import AdvanceOutcome, advance

pytestmark = pytest.mark.django_db


def checkpoint_statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "durable_stepcheckpoint" in q["sql"]]


def test_parking_at_a_wait_reads_the_history_once_and_writes_its_checkpoint_in_one_statement():
    durable.start("cp-park", "send_with_undo", "hello", 60)
    with CaptureQueriesContext(connection) as queries:
        assert advance("cp-park") is AdvanceOutcome.SUSPENDED
    statements = checkpoint_statements(queries)
    assert len(statements) == 2, statements  # the history, then the wait's checkpoint
    assert statements[0].lstrip().upper().startswith("SELECT")
    assert statements[1].lstrip().upper().startswith("INSERT")
    wait = StepCheckpoint.objects.get(run_id="cp-park", position=0)
    assert (wait.kind, wait.status, wait.finished_at) == ("wait", CheckpointStatus.PENDING, None)


def test_a_checkpoint_written_again_is_completed_in_place_and_keeps_when_it_started():
    durable.start("cp-again", "send_with_undo", "hello", 60)
    assert advance("cp-again") is AdvanceOutcome.SUSPENDED
    first = StepCheckpoint.objects.get(run_id="cp-again", position=0)
    assert durable.send_signal("cp-again", "undo", {"why": "typo"}).accepted
    assert advance("cp-again") is AdvanceOutcome.FINISHED
    done = StepCheckpoint.objects.get(run_id="cp-again", position=0)
    assert done.pk == first.pk and done.started_at == first.started_at
    assert done.status == CheckpointStatus.DONE and done.finished_at is not None
    assert StepCheckpoint.objects.filter(run_id="cp-again").count() == 1
