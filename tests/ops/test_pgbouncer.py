"""Behind PgBouncer in transaction pooling mode (DATABASE_POOLER=pgbouncer) the engine keeps no
session state on a server connection, which the pooler hands to other clients after each
transaction: no `SET synchronous_commit`, no `LISTEN`. A real pgbouncer with one server connection
shows what a process left behind. (CI also runs the crash and multi-machine tests through one.)"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from devtools.processes import ROOT
from tests.support import pgbouncer
from tests.support.environment import process_env
from tests.support.manage import manage_py

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer is for PostgreSQL"),
]

# A pusher's life in short: it hands out a task, then waits for the next one.
PUSHER = """
from durable.transport.broker import PromptORMBroker
broker = PromptORMBroker()
broker.enqueue("a task")
assert broker.dequeue()
assert not broker.dequeue()
"""


@pytest.fixture
def bouncer_url():
    settings = connection.settings_dict
    bouncer, port = pgbouncer.start(
        Path(tempfile.mkdtemp(prefix="oneclick-pgbouncer-")),
        settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432, pool_size=1,
    )  # fmt: skip
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/{settings['NAME']}"
    finally:
        bouncer.kill()


def test_a_pusher_behind_pgbouncer_leaves_no_session_state_for_the_next_client(bouncer_url):
    manage_py(
        "shell", "-c", PUSHER,
        env=process_env(DATABASE_URL=bouncer_url, DATABASE_POOLER="pgbouncer"),
    )  # fmt: skip
    # The pool's one server connection, as the next client gets it.
    with psycopg.connect(
        bouncer_url.replace("postgres://", "postgresql://"), prepare_threshold=None
    ) as next_client:
        assert next_client.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert next_client.execute("SELECT pg_listening_channels()").fetchall() == []


def test_an_unknown_pooler_is_refused_at_start_naming_the_setting():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env=process_env(DATABASE_POOLER="pgpool"),
    )  # fmt: skip
    assert done.returncode != 0
    assert "DATABASE_POOLER must be empty or 'pgbouncer'" in done.stderr
