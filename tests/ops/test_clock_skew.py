"""One clock: the worker's and the poller's clocks may be seconds off (Debian's `faketime`) without
confirming a purchase early or late. Real processes on PostgreSQL; the web process keeps the right
time. When a purchase was confirmed is measured by the database's own clock (a trigger notes
`clock_timestamp()` when the run ends), whatever the engine writes. A control phase without skew,
run first, gives the lateness the skewed phases are held to (plus 0.3 s): no absolute margin."""

from __future__ import annotations

import statistics
import sys

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from devtools.ports import TEST_SERVERS, free_port
from devtools.processes import Process, running, wait_for_http, wait_until, web
from durable.models import RunStatus, WorkflowRun
from purchases import services
from purchases.models import Order, Product, Purchase
from tests.ops.json_http import call
from tests.support.environment import process_env
from tests.support.services import require_program

pytestmark = [
    pytest.mark.crash,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serves one machine, whose processes share its one clock",
    ),
]

WINDOW_SECONDS = 2
PURCHASES_PER_PHASE = 6
# (worker's offset, poller's offset) for faketime; None: the machine's clock.
PHASES = {
    "no skew": (None, None),
    "worker 2 s behind, poller 2 s ahead": ("-2s", "+2s"),
    "worker 2 s ahead, poller 2 s behind": ("+2s", "-2s"),
}
SLACK_SECONDS = 0.3

_PROBE = """
CREATE TABLE clock_probe (run_id text PRIMARY KEY, finished_at timestamptz NOT NULL);
CREATE FUNCTION clock_probe_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO clock_probe VALUES (NEW.id, clock_timestamp()) ON CONFLICT DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER clock_probe AFTER UPDATE ON {runs} FOR EACH ROW
  WHEN (NEW.status = 'succeeded' AND OLD.status <> 'succeeded') EXECUTE FUNCTION clock_probe_note();
"""
_NO_PROBE = """
DROP TRIGGER IF EXISTS clock_probe ON {runs};
DROP FUNCTION IF EXISTS clock_probe_note();
DROP TABLE IF EXISTS clock_probe;
"""


def _sql(statements: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statements.format(runs=WorkflowRun._meta.db_table))


def skewed(name: str, offset: str | None, command: str, env: dict[str, str]) -> Process:
    """`manage.py command`, its clock (and its children's) `offset` off under faketime."""
    argv = [sys.executable, "manage.py", command]
    if offset is not None:
        argv = [require_program("faketime", "faketime"), "-f", offset, *argv]
    return Process(name, argv, env)


def lateness(keys: list[str]) -> list[float]:
    """Seconds from each purchase's deadline to its confirmation, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXTRACT(EPOCH FROM probe.finished_at - p.cancel_until) "
            f"FROM clock_probe probe JOIN {Purchase._meta.db_table} p ON p.run_id = probe.run_id "
            "WHERE p.key = ANY(%s)",
            [keys],
        )
        return [float(late) for (late,) in cursor.fetchall()]


def buy_all(url: str, token: str, keys: list[str]) -> None:
    for key in keys:
        status, body = call(f"{url}/api/buy/{key}", token, {"item_id": "gizmo-skew"})
        assert status == 202, body


def finished(keys: list[str]) -> bool:
    runs = WorkflowRun.objects.filter(purchase__key__in=keys, status=RunStatus.SUCCEEDED)
    return runs.count() == len(keys)


def test_skewed_worker_and_poller_clocks_neither_advance_nor_delay_a_confirmation():
    require_program("faketime", "faketime")
    user = get_user_model().objects.create_user("skew", password="unused-pw-123")
    services.save_payment_method(user, "pm_card_visa")
    token = Token.objects.create(user=user).key
    Product.objects.create(item_id="gizmo-skew", name="Gizmo", price="4.50", stock=100)
    env = process_env(
        Q_CLUSTER_NAME="ops-skew",
        REDIS_URL="",
        Q_WORKERS="2",
        WEB_CONCURRENCY="1",
        ONECLICK_CANCEL_WINDOW_SECONDS=str(WINDOW_SECONDS),
        # Long enough that a run enqueued too early is not simply sent again within the test.
        DURABLE_REDELIVER_AFTER_SECONDS="30",
    )
    port = free_port(TEST_SERVERS)
    url = f"http://127.0.0.1:{port}"
    _sql(_PROBE)
    figures: dict[str, list[float]] = {}
    try:
        with running(web(env, port, name="ops-skew-web")):
            wait_for_http(f"{url}/healthz", timeout=90)
            for phase, (worker_offset, poller_offset) in PHASES.items():
                label = phase.split(",")[0].replace(" ", "-")
                cluster = skewed(f"ops-skew-worker-{label}", worker_offset, "qcluster", env)
                poller = skewed(f"ops-skew-poller-{label}", poller_offset, "durable_poller", env)

                with running(cluster, poller):
                    # A first purchase confirmed means this phase's cluster and poller both work.
                    warm = [f"warm-{label}"]
                    buy_all(url, token, warm)
                    try:
                        wait_until(lambda w=warm: finished(w), 120, 0.1)
                    except AssertionError:
                        raise AssertionError(cluster.log()[-3000:] + poller.log()[-3000:]) from None
                    keys = [f"{label}-{n}" for n in range(PURCHASES_PER_PHASE)]
                    buy_all(url, token, keys)
                    wait_until(lambda k=keys: finished(k), 120, 0.1, f"{phase}: not all confirmed")
                figures[phase] = lateness(keys)
    finally:
        _sql(_NO_PROBE)

    report = {phase: [round(late, 3) for late in sorted(lates)] for phase, lates in figures.items()}
    control = statistics.median(figures["no skew"])
    for phase, lates in figures.items():
        assert len(lates) == PURCHASES_PER_PHASE, report
        assert min(lates) >= 0, f"{phase}: confirmed before the deadline: {report}"
        assert statistics.median(lates) <= control + SLACK_SECONDS, f"{phase} late: {report}"
    for purchase in Purchase.objects.select_related("run"):
        assert purchase.run.result["state"] == "PURCHASE_CONFIRMED", purchase.key
        assert Order.objects.filter(purchase=purchase).count() == 1
    print("lateness by phase (s):", report)
