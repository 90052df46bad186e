"""A worker whose database connection died (the server restarted while it was idle) advances its
next run on a new connection, instead of failing the task and leaving the run to the poller's
redelivery (DURABLE_REDELIVER_AFTER_SECONDS later)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

import durable
from durable import tasks
from durable.models import RunStatus, WorkflowRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="ends a server connection: PostgreSQL"
    ),
]


def _terminate_this_connection() -> None:
    """What a restart does to an idle connection: the server ends it; the client learns it at its
    next statement."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    dsn = f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432} "
    dsn += f"user={settings['USER'] or 'postgres'} dbname={settings['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.parametrize("batch", [False, True], ids=["one run", "a batch"])
def test_an_engine_task_on_a_dead_connection_reconnects_and_advances_its_run(batch):
    durable.start("reconnect-1", "send_with_undo", "hello", 0)
    _terminate_this_connection()
    if batch:
        assert tasks.advance_batch_task(["reconnect-1"]) == {"finished": 1}
    else:
        assert tasks.advance_task("reconnect-1") == "finished"
    assert WorkflowRun.objects.get(pk="reconnect-1").status == RunStatus.SUCCEEDED
