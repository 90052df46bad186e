"""Staff see runs with their step timeline and workflow signals, and can resume or cancel them."""

from __future__ import annotations

import pytest
from django.urls import reverse

import durable
from durable.models import RunStatus, WorkflowRun
from durable.runtime.executor import advance

pytestmark = pytest.mark.django_db


def test_run_list_filters_and_the_run_page_shows_timeline_and_signals(admin_client):
    durable.start("admin-1", "send_with_undo", "hello", 30)
    durable.start("admin-2", "sleeper", 30)
    advance("admin-1")
    durable.send_signal("admin-1", "undo", {"why": "typo"})
    listing = admin_client.get(reverse("admin:durable_workflowrun_changelist"), {"q": "admin-1"})
    assert listing.status_code == 200
    assert b"admin-1" in listing.content and b"admin-2" not in listing.content
    by_workflow = admin_client.get(
        reverse("admin:durable_workflowrun_changelist"), {"workflow": "sleeper"}
    )
    assert b"admin-2" in by_workflow.content and b"admin-1" not in by_workflow.content
    page = admin_client.get(reverse("admin:durable_workflowrun_change", args=["admin-1"]))
    assert page.status_code == 200
    assert b"Step timeline" in page.content and b"wait:undo" in page.content
    assert b"Workflow signals" in page.content and b"typo" in page.content


def test_admin_actions_resume_and_cancel(admin_client):
    durable.start("admin-3", "send_with_undo", "hello", 30)
    url = reverse("admin:durable_workflowrun_changelist")
    response = admin_client.post(
        url, {"action": "cancel_runs", "_selected_action": ["admin-3"]}, follow=True
    )
    assert b"Cancelled 1 run" in response.content
    assert WorkflowRun.objects.get(pk="admin-3").status == RunStatus.CANCELLED
    durable.start("admin-4", "sleeper", 30)
    WorkflowRun.objects.filter(pk="admin-4").update(enqueued_at=None)
    response = admin_client.post(
        url, {"action": "resume_now", "_selected_action": ["admin-4"]}, follow=True
    )
    assert b"Enqueued 1 run" in response.content
    assert WorkflowRun.objects.get(pk="admin-4").enqueued_at is not None
