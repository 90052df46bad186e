"""A real PostgreSQL restart under real processes (web, django-q2 cluster, poller): every process
reconnects by itself, every purchase ends as its customer decided, and a run due meanwhile is
confirmed within 2 s of the database's return.

The database is a private cluster on its own port (tests/support/postgres.py; the shared one is
never restarted), so the test needs root: in CI (ONECLICK_REQUIRE_SERVICES=1) without it, it fails.
"The database's return" is when the test's own connection (tried every 10 ms) succeeds again, read
on the database's clock, the clock the engine confirms by."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
import pytest
from django.db import connection

from devtools.pgcluster import ReturnWatch, delay_after_return
from devtools.ports import TEST_SERVERS, free_port
from devtools.processes import Process, poller, running, wait_for_http, wait_until, web, worker
from tests.ops.json_http import call
from tests.support import postgres
from tests.support.environment import process_env
from tests.support.manage import manage_py

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a PostgreSQL restart: the PostgreSQL suite"
    ),
]

WINDOW_SECONDS = 2
PER_BATCH = 6
RECOVERY = dt.timedelta(seconds=2)

SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from purchases import services
from purchases.models import Product
user = get_user_model().objects.create_user("restart", password="unused-pw-123")
services.save_payment_method(user, "pm_card_visa")
Product.objects.create(item_id="gizmo-rs", name="Gizmo", price="4.50", stock=100)
print(Token.objects.create(user=user).key)
"""

OUTCOMES = """
SELECT p.key, r.status, r.result::jsonb ->> 'state', p.cancel_until, r.finished_at,
       (SELECT count(*) FROM purchases_order o WHERE o.purchase_id = p.id)
FROM purchases_purchase p JOIN durable_workflowrun r ON r.id = p.run_id
"""


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def cluster():
    """The private cluster, stopped again after the test (nothing is left listening on 5499)."""
    postgres.restartable_cluster()
    try:
        yield
    finally:
        postgres.CLUSTER.stop()


def test_every_process_reconnects_and_overdue_runs_finish_within_2s_of_a_restart(cluster):
    base = process_env()
    url = postgres.fresh_database("oneclick_restart_test", base)
    env = process_env(
        DATABASE_URL=url,
        Q_CLUSTER_NAME="ops-restart",
        REDIS_URL="",
        Q_WORKERS="2",
        WEB_CONCURRENCY="1",
        ONECLICK_CANCEL_WINDOW_SECONDS=str(WINDOW_SECONDS),
        # Redelivery would hide a process that failed to take its work back by itself.
        DURABLE_REDELIVER_AFTER_SECONDS="60",
    )
    token = manage_py("shell", "-c", SETUP, env=env).split()[-1]
    port = free_port(TEST_SERVERS)
    site = f"http://127.0.0.1:{port}"
    processes = (
        web(env, port, name="ops-restart-web"),
        worker(env, name="ops-restart-worker"),
        poller(env, name="ops-restart-poller"),
    )
    cancels: dict[str, bool] = {}
    returns: list[dt.datetime] = []

    def buy(keys: list[str]) -> None:
        for key in keys:
            status, body = call(f"{site}/api/buy/{key}", token, {"item_id": "gizmo-rs"})
            assert status == 202, body

    def cancel(key: str) -> None:
        status, body = call(f"{site}/api/cancel/{key}", token, {})
        assert status in (200, 409), body
        cancels[key] = status == 200

    def all_finished(count: int) -> bool:
        done = query(url, "SELECT count(*) FROM durable_workflowrun WHERE finished_at IS NOT NULL")
        return done[0][0] == count

    def wait(predicate: Any, message: str) -> None:
        try:
            wait_until(predicate, 120, 0.05, message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs(processes)}") from None

    with running(*processes):
        wait_for_http(f"{site}/healthz", timeout=90)
        buy(["warm"])  # confirmed: the cluster and the poller work
        wait(lambda: all_finished(1), "the first purchase was not confirmed")

        # A restart in the middle of a window; cancels are asked once the database is back.
        first = [f"mid-{n}" for n in range(PER_BATCH)]
        buy(first)
        watch = ReturnWatch(url)
        watch.start()
        postgres.CLUSTER.restart()
        returns.append(watch.result())
        for key in first[::3]:
            cancel(key)

        # Down across every deadline of a batch, then back.
        second = [f"across-{n}" for n in range(PER_BATCH)]
        buy(second)
        for key in second[::3]:
            cancel(key)
        watch = ReturnWatch(url)
        watch.start()
        postgres.CLUSTER.stop()
        time.sleep(WINDOW_SECONDS + 0.5)  # every deadline of the batch passes meanwhile
        postgres.CLUSTER.start()
        returns.append(watch.result())

        wait(lambda: all_finished(1 + 2 * PER_BATCH), "not every purchase finished")

    outcomes = {row[0]: row[1:] for row in query(url, OUTCOMES)}
    late = {}
    for key, (status, state, cancel_until, finished_at, orders) in outcomes.items():
        assert status == "succeeded", (key, status)
        if cancels.get(key):
            assert (state, orders) == ("PURCHASE_CANCELLED", 0), key
            continue
        assert (state, orders) == ("PURCHASE_CONFIRMED", 1), key
        assert finished_at >= cancel_until, f"{key} confirmed before its deadline"
        late[key] = delay_after_return(finished_at, cancel_until, returns).total_seconds()
    assert max(late.values()) <= RECOVERY.total_seconds(), (sorted(late.items()), logs(processes))
    overdue = [key for key in outcomes if key.startswith("across-") and not cancels.get(key)]
    assert overdue, "the second batch must have runs overdue when the database returns"
    print("seconds from max(deadline, return) to confirmation:", sorted(late.items()))


def logs(processes: tuple[Process, ...]) -> str:
    return "\n".join(process.log()[-3000:] for process in processes)
