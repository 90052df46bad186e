"""django-q2 locked down (issue 29, item 3): its admin pages are gone for every staff member,
whatever their permissions, and a task naming a function that is not the engine's is refused
before it is signed: the worker neither imports nor runs it, whether it came from a schedule
row, a result hook or code. The engine's own schedules come from `manage.py engine_schedules`."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_q.models import Failure, Schedule
from django_q.scheduler import scheduler
from django_q.tasks import async_task

from oneclick_project.task_allowlist import retention_task_path
from tests.support.cluster_loops import through_the_cluster, use_orm_broker

pytestmark = pytest.mark.django_db(transaction=True)

DJANGO_Q_PAGES = ["schedule", "success", "failure", "ormq"]


def staff_with_every_django_q_permission():
    user = get_user_model().objects.create_user("ops", password="pw-ops-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="django_q"))
    return user


@pytest.mark.parametrize("who", ["superuser", "staff with django_q permissions"])
def test_no_staff_member_gets_django_q_admin_pages(who: str) -> None:
    if who == "superuser":
        user = get_user_model().objects.create_superuser("root", "r@example.com", "pw-root-123")
    else:
        user = staff_with_every_django_q_permission()
    client = Client()
    client.force_login(user)
    index = client.get("/admin/")
    assert index.status_code == 200 and "/admin/django_q/" not in index.text
    for model in DJANGO_Q_PAGES:
        assert client.get(f"/admin/django_q/{model}/").status_code == 404
    added = client.post(
        "/admin/django_q/schedule/add/",
        {"func": "os.mkdir", "args": "'/tmp/x'", "schedule_type": "O", "repeats": "-1",
         "next_run_0": "2020-01-01", "next_run_1": "00:00:00"},
    )  # fmt: skip
    assert added.status_code == 404
    assert not Schedule.objects.exists()


@pytest.fixture
def foreign_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A module on the path that leaves a mark when it is imported and another when called."""
    name = f"foreign_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(tmp_path / 'imported')!r}).touch()\n"
        f"def run(*args):\n    Path({str(tmp_path / 'ran')!r}).touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, tmp_path
    sys.modules.pop(name, None)


def test_a_schedule_naming_another_function_is_never_imported_nor_run(
    foreign_module, monkeypatch, caplog
) -> None:
    name, marks = foreign_module
    broker = use_orm_broker("prompt", monkeypatch)
    Schedule.objects.create(
        name="sneaky", func=f"{name}.run", args="'x'", hook=f"{name}.run",
        schedule_type=Schedule.ONCE, next_run=timezone.now() - dt.timedelta(minutes=1),
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="oneclick.tasks"):
        scheduler(broker=broker)
        through_the_cluster(broker, monkeypatch)
    assert not (marks / "imported").exists(), "the worker imported a foreign module"
    assert not (marks / "ran").exists()
    assert name not in sys.modules
    [failure] = Failure.objects.all()
    assert f"'{name}.run' is not one of the engine's tasks" in failure.result
    assert failure.hook is None
    assert any(f"{name}.run" in r.getMessage() for r in caplog.records)


def test_a_task_code_enqueues_with_a_foreign_function_is_refused_too(monkeypatch, tmp_path):
    broker = use_orm_broker("prompt", monkeypatch)
    target = tmp_path / "made-by-os-mkdir"
    async_task("os.mkdir", str(target), broker=broker)
    through_the_cluster(broker, monkeypatch)
    assert not target.exists()
    assert "'os.mkdir' is not one of the engine's tasks" in Failure.objects.get().result


def test_engine_schedules_creates_the_retention_schedule_that_runs(monkeypatch) -> None:
    broker = use_orm_broker("prompt", monkeypatch)
    Schedule.objects.create(name="left over", func="os.system", args="'true'")
    out, err = StringIO(), StringIO()
    call_command("engine_schedules", stdout=out, stderr=err)
    call_command("engine_schedules", stdout=out, stderr=err)  # again: updated, not doubled
    schedule = Schedule.objects.get(name="durable retention")
    assert schedule.func == retention_task_path() == "durable.tasks.prune_workflows"
    assert schedule.schedule_type == Schedule.DAILY
    assert "created" in out.getvalue() and "updated" in out.getvalue()
    assert "'os.system', not one of the engine's tasks" in err.getvalue()
    Schedule.objects.filter(name="left over").delete()
    Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - dt.timedelta(1))
    scheduler(broker=broker)
    through_the_cluster(broker, monkeypatch)
    assert not Failure.objects.exists(), [f.result for f in Failure.objects.all()]
    call_command("engine_schedules", "--remove", stdout=out, stderr=err)
    assert not Schedule.objects.exists()
