"""The run admin shows its timeline to the millisecond with each step's duration, and marks
overdue runs with what keeps them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

import durable
from durable.models import StepCheckpoint, WorkflowRun
from durable.runtime.executor import advance

pytestmark = pytest.mark.django_db

MILLISECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_the_timeline_shows_milliseconds_and_durations(admin_client):
    durable.start("tl-1", "send_with_undo", "hello", 30)
    advance("tl-1")
    durable.send_signal("tl-1", "undo")
    advance("tl-1")
    page = admin_client.get(reverse("admin:durable_workflowrun_change", args=["tl-1"]))
    html = page.content.decode()
    timeline = html[html.index("Step timeline") :]
    checkpoints = StepCheckpoint.objects.filter(run_id="tl-1")
    assert len(re.findall(MILLISECONDS, timeline)) >= 2 * len(checkpoints) > 0
    for checkpoint in checkpoints:
        took = (checkpoint.finished_at - checkpoint.started_at).total_seconds() * 1000
        assert f"{took:.1f} ms" in timeline
    assert "p.m." not in timeline and "a.m." not in timeline


def test_overdue_runs_are_marked_with_the_reason(admin_client):
    for run_id in ("od-late", "od-on-time"):
        durable.start(run_id, "send_with_undo", "hello", 600)
        advance(run_id)
    WorkflowRun.objects.filter(pk="od-late").update(
        wake_at=timezone.now() - dt.timedelta(seconds=40), enqueued_at=timezone.now()
    )
    listing = admin_client.get(reverse("admin:durable_workflowrun_changelist")).content.decode()
    row = next(line for line in listing.split("<tr") if "od-late" in line)
    assert re.search(r"overdue 4\d\.\ds</strong>: enqueued \d+\.\ds ago, not picked up", row)
    on_time = next(line for line in listing.split("<tr") if "od-on-time" in line)
    assert '<td class="field-overdue">-</td>' in on_time
    only = admin_client.get(reverse("admin:durable_workflowrun_changelist"), {"overdue": "yes"})
    assert "od-late" in only.content.decode() and "od-on-time" not in only.content.decode()
    page = admin_client.get(reverse("admin:durable_workflowrun_change", args=["od-late"]))
    assert "not picked up by a worker" in page.content.decode()


def test_a_failing_step_is_named_as_the_reason(admin_client, settings):
    settings.DURABLE = {**settings.DURABLE, "RETRY_BACKOFF_SECONDS": 60}
    durable.start("od-flaky", "flaky", 5, 10)
    advance("od-flaky")  # the first attempt fails; the retry is a minute away
    WorkflowRun.objects.filter(pk="od-flaky").update(
        wake_at=timezone.now() - dt.timedelta(seconds=30)
    )
    page = admin_client.get(reverse("admin:durable_workflowrun_change", args=["od-flaky"]))
    assert "step flaky failing: ConnectionError: attempt 1 failed" in page.content.decode()


def test_the_run_page_shows_each_field_once_and_a_long_error_shortened(admin_client):
    durable.start("once-1", "send_with_undo", "hello", 30)
    advance("once-1")
    StepCheckpoint.objects.filter(run_id="once-1").update(
        error="Traceback (most recent call last):\n" + "x" * 5000
    )
    html = admin_client.get(reverse("admin:durable_workflowrun_change", args=["once-1"]))
    html = html.content.decode()
    labels = re.findall(r"<label>([^<]+):</label>", html)
    assert len(labels) == len(set(labels)), sorted(labels)
    for field_label in ("Lease expires at", "Wake at", "Finished at", "Blocked at"):
        assert labels.count(field_label) + labels.count(field_label.removesuffix(" at")) <= 1
    timeline = html[html.index("Step timeline") :]
    assert "x" * 81 not in re.sub(r'title="[^"]*"', "", timeline), "the whole error on the page"
    assert "Traceback (most recent call last):\u2026" in timeline
