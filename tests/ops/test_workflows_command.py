"""`manage.py workflows list|show|cancel`: what operators see, and cancelling from the shell."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devtools.processes import ROOT
from durable.models import RunStatus, StepCheckpoint, WorkflowRun
from tests.ops.runs import finished_run, waiting_run
from tests.support.environment import process_env

pytestmark = pytest.mark.django_db


def workflows(*args: str) -> str:
    out = StringIO()
    call_command("workflows", *args, stdout=out)
    return out.getvalue()


def test_list_shows_newest_first_and_filters_by_status_and_workflow():
    finished_run("ops-list-done")
    waiting_run("ops-list-waiting")
    lines = workflows("list").splitlines()
    assert lines[0].split()[:3] == ["RUN", "WORKFLOW", "STATUS"]
    assert [line.split()[0] for line in lines[1:3]] == ["ops-list-waiting", "ops-list-done"]
    assert lines[-2] == "2 run(s)"
    assert re.fullmatch(r"queue: \d+ task\(s\) waiting; 0 step call\(s\) in flight", lines[-1])

    active = workflows("list", "--status", "active")
    assert "ops-list-waiting" in active and "ops-list-done" not in active
    assert "or on workflow signal 'go'" in active
    both = workflows("list", "--status", "waiting", "--status", "succeeded")
    assert both.splitlines()[-2] == "2 run(s)"
    assert workflows("list", "--workflow", "no_such_workflow").splitlines()[-2] == "0 run(s)"
    assert workflows("list", "--limit", "1").splitlines()[-2] == "1 run(s)"


def test_show_prints_the_run_its_step_timeline_and_workflow_signals():
    finished_run("ops-show")
    text = workflows("show", "ops-show")
    assert "run       ops-show" in text
    assert "status    succeeded" in text
    assert 'result    {"signalled":true,"word":"OPS-SHOW"}' in text
    assert "lease     none" in text
    timeline = text.split("Step timeline (2)")[1].split("Workflow signals")[0].splitlines()
    assert timeline[1].split()[:5] == ["POS", "NAME", "KIND", "STATUS", "ATTEMPTS"]
    assert timeline[2].split()[:4] == ["0", "wait:go", "wait", "done"]
    assert timeline[3].split()[:5] == ["1", "shout", "step", "done", "1"]
    assert '"OPS-SHOW"' in timeline[3]
    signals = text.split("Workflow signals (1)")[1].splitlines()
    assert signals[2].split()[1:3] == ["go", "accepted"]
    assert "#0 at" in signals[2] and '{"by":"test"}' in signals[2]


def test_show_a_waiting_run_gives_its_wake_up_time_and_pending_wait():
    waiting_run("ops-show-waiting")
    text = workflows("show", "ops-show-waiting")
    assert "status    waiting" in text
    wake = next(line for line in text.splitlines() if line.startswith("wake-up"))
    assert "(in " in wake and "or on workflow signal 'go'" in wake
    deadline = StepCheckpoint.objects.get(run_id="ops-show-waiting", position=0).deadline
    assert deadline.isoformat(timespec="milliseconds").replace("+00:00", "Z") in text
    assert "Workflow signals (0)" in text


def test_show_reports_a_held_lease_with_its_owner_and_expiry():
    waiting_run("ops-show-leased")
    WorkflowRun.objects.filter(pk="ops-show-leased").update(
        status=RunStatus.RUNNING, lease_owner="host-a:123:abc", lease_expires_at="2000-01-01T00:00Z"
    )
    lease = next(
        line
        for line in workflows("show", "ops-show-leased").splitlines()
        if line.startswith("lease")
    )
    assert "host-a:123:abc until 2000-01-01T00:00:00.000Z" in lease and "s ago)" in lease


def test_cancel_stops_an_active_run_and_refuses_a_finished_one():
    waiting_run("ops-cancel")
    assert "cancelled run 'ops-cancel'" in workflows("cancel", "ops-cancel", "--reason", "ops test")
    run = WorkflowRun.objects.get(pk="ops-cancel")
    assert run.status == RunStatus.CANCELLED and run.error == "ops test"
    with pytest.raises(CommandError, match="already finished \\(cancelled\\); not cancelled"):
        workflows("cancel", "ops-cancel")


def test_resume_refuses_a_finished_run():
    finished_run("ops-resume-done")
    with pytest.raises(CommandError, match="already finished \\(succeeded\\); not resumed"):
        workflows("resume", "ops-resume-done")


@pytest.mark.parametrize("action", ["show", "cancel", "resume"])
def test_an_unknown_run_is_a_clear_command_error(action: str):
    with pytest.raises(CommandError, match="no workflow run 'ops-nope'"):
        workflows(action, "ops-nope")


def test_an_unknown_run_exits_non_zero_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "workflows", "show", "ops-nope"],
        cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "CommandError: no workflow run 'ops-nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_overdue_runs_are_marked_and_can_be_listed_alone():
    import datetime as dt

    from django.utils import timezone

    waiting_run("ops-late")
    waiting_run("ops-on-time")
    WorkflowRun.objects.filter(pk="ops-late").update(
        wake_at=timezone.now() - dt.timedelta(seconds=40)
    )
    listing = workflows("list")
    late_line = next(line for line in listing.splitlines() if line.startswith("ops-late"))
    assert re.search(r"\(4\d\.\ds ago, OVERDUE\)", late_line), late_line
    on_time = next(line for line in listing.splitlines() if line.startswith("ops-on-time"))
    assert "OVERDUE" not in on_time
    only = workflows("list", "--overdue")
    assert "ops-late" in only and "ops-on-time" not in only
    assert "OVERDUE" in workflows("show", "ops-late")
