"""The plain statements' value adaptation (durable/persistence/sql.py) is the ORM's: the values
it passes as they are come out of each field's own adaptation unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from durable.models import StepCheckpoint, WorkflowRun
from durable.persistence import sql

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "name", "value"),
    [
        (WorkflowRun, "id", "run-1"),
        (WorkflowRun, "lease_owner", ""),
        (WorkflowRun, "wake_at", None),
        (WorkflowRun, "result", None),
        (StepCheckpoint, "name", "charge"),
        (StepCheckpoint, "error", "ConnectionError: refused"),
        (StepCheckpoint, "unknown_attempts", None),
        (StepCheckpoint, "result", None),
        (StepCheckpoint, "deadline", None),
    ],
)
def test_a_value_passed_as_it_is_is_what_its_field_adapts_it_to(
    model: Any, name: str, value: Any
) -> None:
    field = model._meta.get_field(name)
    assert sql.prep(model, name, value) == field.get_db_prep_save(value, connection)
    assert type(sql.prep(model, name, value)) is type(field.get_db_prep_save(value, connection))


@pytest.mark.parametrize(
    ("model", "name", "value"),
    [
        (WorkflowRun, "status", "running"),
        (WorkflowRun, "args", ["a", 1]),
        (StepCheckpoint, "result", {"id": "pi_1"}),
        (StepCheckpoint, "result", "a text is JSON too"),
        (StepCheckpoint, "attempts", 2),
        (WorkflowRun, "workflow_version", 3),
    ],
)
def test_other_values_go_through_their_fields_adaptation(model: Any, name: str, value: Any) -> None:
    field = model._meta.get_field(name)
    ours, orms = sql.prep(model, name, value), field.get_db_prep_save(value, connection)
    # A JSON value comes wrapped in an adapter object of its own each time.
    assert type(ours) is type(orms)
    assert getattr(ours, "obj", ours) == getattr(orms, "obj", orms)


def test_a_statement_built_once_is_kept_and_the_same_as_built_anew() -> None:
    run = WorkflowRun.objects.create(id="sql-kept", workflow="w", args=[])
    sql._statement.cache_clear()
    for owner in ("first", "second"):
        count, row = sql.update(
            WorkflowRun, {"lease_owner": owner}, "id = %s", [run.pk], returning="lease_owner"
        )
        assert (count, row) == (1, (owner,))
    assert sql._statement.cache_info().hits == 1
