"""Logs: one structured line per run transition; heartbeat probes stay out of the INFO log."""

from __future__ import annotations

import logging
import re

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

import durable
from durable.models import WorkflowRun
from durable.ops import health
from durable.runtime.executor import advance
from durable.transport import dispatch

pytestmark = pytest.mark.django_db

LINE = re.compile(r'^run_transition( [a-z_]+=("([^"\\]|\\.)*"|[^\s"]+))+$')


def transitions(caplog, run_id: str) -> list[dict[str, str]]:
    found = []
    for record in caplog.records:
        if record.name != "durable.runs":
            continue
        message = record.getMessage()
        assert LINE.match(message), message
        pairs = dict(re.findall(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)', message))
        if pairs["run"] == run_id:
            found.append({k: v.strip('"') for k, v in pairs.items()})
    return found


@pytest.mark.django_db(transaction=True)  # a start logs once it commits
def test_every_run_transition_logs_one_key_value_line(caplog):
    caplog.set_level(logging.INFO, logger="durable.runs")
    durable.start("log-1", "send_with_undo", "hello", 30)
    advance("log-1")
    durable.send_signal("log-1", "undo", {"why": "typo"})
    advance("log-1")
    statuses = [line["status"] for line in transitions(caplog, "log-1")]
    assert statuses == ["pending", "running", "waiting", "pending", "running", "succeeded"]
    started, _, waiting, woken, _, finished = transitions(caplog, "log-1")
    assert started["workflow"] == "send_with_undo" and started["event"] == "started"
    assert waiting["wake_at"] and "undo" in waiting["reason"]
    assert woken["event"] == "workflow_signal" and woken["signal"] == "undo"
    assert float(finished["duration_ms"]) >= 0


def test_a_cancelled_run_logs_its_reason(caplog):
    caplog.set_level(logging.INFO, logger="durable.runs")
    durable.start("log-2", "sleeper", 30)
    assert durable.engine.cancel("log-2", "operator said so")
    last = transitions(caplog, "log-2")[-1]
    assert last["status"] == "cancelled" and last["reason"] == "operator said so"


def test_heartbeat_probes_log_nothing_at_info(caplog):
    caplog.set_level(logging.INFO)
    queue_logger = logging.getLogger("django-q")
    health.send_worker_probe()  # django-q2 logs "Enqueued [...] <id>", naming no task
    queue_logger.info(f"Worker-1 processing durable heartbeat probe '{dispatch.PROBE_TASK_PATH}'")
    queue_logger.info(f"Processed '{dispatch.PROBE_TASK_PATH}' (durable heartbeat probe)")
    queue_logger.info("Processed 'durable.tasks.advance' (some run)")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [line for line in lines if "probe" in line or "Enqueued" in line], lines
    assert "Processed 'durable.tasks.advance' (some run)" in lines, "other tasks still log"


def test_probe_lines_show_when_the_health_logger_is_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="durable.ops.health")
    caplog.set_level(logging.DEBUG, logger="django-q")
    # The task's path alone marks it as a probe (this line names no probe otherwise).
    logging.getLogger("django-q").info(f"Processed '{dispatch.PROBE_TASK_PATH}' (x)")
    assert [r.levelname for r in caplog.records if "worker_probe" in r.getMessage()] == ["DEBUG"]


def transitions_counted(workflow: str, status: str) -> float:
    sample = REGISTRY.get_sample_value(
        "durable_run_transitions_total", {"workflow": workflow, "status": status}
    )
    return sample or 0.0


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_logs_and_counts_its_transitions_only_once_it_commits(caplog):
    caplog.set_level(logging.INFO, logger="durable.runs")
    counted = {s: transitions_counted("send_with_undo", s) for s in ("pending", "waiting")}
    with pytest.raises(RuntimeError), transaction.atomic():
        durable.start("log-rolled-back", "send_with_undo", "hello", 30, eager=True)
        raise RuntimeError("the caller's transaction fails after the start")
    assert not WorkflowRun.objects.filter(pk="log-rolled-back").exists()
    assert transitions(caplog, "log-rolled-back") == []
    assert {s: transitions_counted("send_with_undo", s) for s in counted} == counted
    with transaction.atomic():
        durable.start("log-committed", "send_with_undo", "hello", 30, eager=True)
        assert transitions(caplog, "log-committed") == [], "not before the commit"
    assert [line["status"] for line in transitions(caplog, "log-committed")] == [
        "pending", "waiting",
    ]  # fmt: skip
    assert {s: transitions_counted("send_with_undo", s) for s in counted} == {
        s: n + 1 for s, n in counted.items()
    }
