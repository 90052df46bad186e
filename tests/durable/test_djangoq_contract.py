"""The contract with django-q2 that durable/transport/taskqueue.py (the engine's one adapter to it)
relies on, checked against the installed django-q2 by running its own code: the pusher, worker
and monitor loops, async_task, its brokers, its queue table, its settings object. Most of it is
private to django-q2, so an upgrade may change it without notice; each failure names the
behaviour that changed. Adapt durable/transport/taskqueue.py (and the engine's broker) before
upgrading; DURABLE_BROKER=stock (django-q2's own broker, acknowledgement and connection checks)
relies on much less of it."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import django_q
import pytest
from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signals import post_spawn, pre_execute
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from durable.ops.worker_heartbeat import on_worker_spawn
from durable.tasks import before_engine_task
from durable.transport import taskqueue
from tests.support.cluster_loops import through_the_cluster, use_orm_broker

pytestmark = pytest.mark.django_db(transaction=True)

PATH = f"{__name__}"
# What the tasks of these tests saw: their arguments, and the task dict pre_execute was given.
calls: list[Any] = []
pre_execute_tasks: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _these_tasks_may_be_enqueued(settings: Any) -> None:
    # Only the engine's functions may be enqueued (oneclick_project/task_allowlist.py): these
    # tests' own tasks are allowed by name, as Q_TASK_ALLOWLIST would allow them in a deployment.
    settings.Q_TASK_ALLOWLIST = [f"{PATH}.{name}" for name in ("record", "pop_ack_id", "fail")]


def contract(holds: Any, behaviour: str) -> None:
    """Fail, naming the django-q2 behaviour the engine relies on, unless it `holds`."""
    version = ".".join(map(str, django_q.VERSION))
    assert holds, (
        f"django-q2 {version} no longer behaves as durable/transport/taskqueue.py relies on: "
        f"{behaviour}"
    )


def record(value: Any) -> Any:
    """A task: records its argument."""
    calls.append(value)
    return value


def pop_ack_id() -> str:
    """A task that does what an engine task's commit does: take the ack_id off its task dict."""
    pre_execute_tasks[-1].pop("ack_id")
    return "acknowledged itself"


def fail() -> None:
    """A task that fails."""
    raise RuntimeError("this task fails")


@pytest.fixture(autouse=True)
def _watch_pre_execute():
    calls.clear()
    pre_execute_tasks.clear()

    def watch(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
        pre_execute_tasks.append(task)
        calls.append(("pre_execute", sender, func, sorted(kwargs)))

    pre_execute.connect(watch, weak=False, dispatch_uid="contract-watch")
    yield
    pre_execute.disconnect(dispatch_uid="contract-watch")


def test_settings_are_read_from_q_cluster():
    q_cluster = settings.Q_CLUSTER
    read = {
        "orm": Conf.ORM,
        "broker_class": Conf.BROKER_CLASS,
        "poll": Conf.POLL,
        "bulk": Conf.BULK,
        "retry": Conf.RETRY,
        "ack_failures": Conf.ACK_FAILURES,
    }
    for key, value in read.items():
        contract(
            value == q_cluster.get(key, value),
            f"Conf reads Q_CLUSTER[{key!r}] "
            "(durable.transport.taskqueue's queue_alias, poll_seconds, ...)",
        )


def test_the_configured_broker_class_is_built_with_the_cluster_name_as_its_list_key():
    broker = get_broker()
    contract(
        type(broker) is import_string(Conf.BROKER_CLASS) and broker.list_key == Conf.CLUSTER_NAME,
        'get_broker() builds Q_CLUSTER["broker_class"](list_key=<the cluster name>)',
    )
    contract(
        Broker(list_key=None).list_key == Conf.CLUSTER_NAME,
        "a broker's list_key defaults to the cluster name (the engine's broker writes it as key)",
    )


def test_the_orm_queue_is_one_table_of_key_payload_and_lock():
    fields = {field.name: type(field) for field in OrmQ._meta.get_fields()}
    expected = {
        "key": models.CharField,
        "payload": models.TextField,
        "lock": models.DateTimeField,
    }
    for name, kind in expected.items():
        contract(
            issubclass(fields.get(name, type(None)), kind),
            f"OrmQ has a {kind.__name__} {name!r} (the engine's broker writes it in SQL)",
        )
    contract(
        taskqueue.queue_table() == OrmQ._meta.db_table, "OrmQ's table is the ORM queue's table"
    )


@pytest.mark.parametrize(("writer", "reader"), [("prompt", "stock"), ("stock", "prompt")])
def test_stock_and_engine_brokers_read_each_others_tasks(writer, reader, monkeypatch):
    # Switching DURABLE_BROKER at a deploy leaves the queued tasks to the other broker.
    written = use_orm_broker(writer, monkeypatch)
    task_id = written.enqueue(SignedPackage.dumps({"func": PATH}))
    read = import_string(settings.ORM_BROKERS[reader])(list_key=written.list_key)
    [(claimed_id, payload)] = read.dequeue()
    contract(
        claimed_id == task_id and SignedPackage.loads(payload) == {"func": PATH},
        "the stock ORM broker claims the rows the engine's writes, and the other way round",
    )
    row = OrmQ.objects.get(pk=task_id)
    contract(row.lock > timezone.now(), "a claimed row's lock is set into the future (retry)")
    contract(read.queue_size() == 0, "queue_size counts the rows whose lock has passed")
    read.acknowledge(task_id)
    contract(not OrmQ.objects.filter(pk=task_id).exists(), "an ORM broker acknowledges by delete")


def test_async_task_writes_a_signed_payload_naming_the_function_by_its_path(monkeypatch):
    broker = use_orm_broker("prompt", monkeypatch)
    with transaction.atomic():
        async_task(f"{PATH}.record", "x", broker=broker, task_name="named")
        contract(OrmQ.objects.count() == 1, "async_task writes through broker.enqueue at once")
    [row] = OrmQ.objects.all()
    task = SignedPackage.loads(row.payload)
    contract(
        task["func"] == f"{PATH}.record" and task["args"] == ("x",) and task["name"] == "named",
        "SignedPackage.loads(payload) is the task dict: func (the path as given), args, name",
    )
    contract(taskqueue.payload_func(row.payload) == f"{PATH}.record", "payload_func reads it")
    contract(
        taskqueue.payload_func("not signed") is None, "SignedPackage.loads refuses another payload"
    )


def test_the_pusher_gives_the_task_its_queue_rows_id_as_ack_id_and_the_worker_finds_the_path(
    monkeypatch,
):
    broker = use_orm_broker("prompt", monkeypatch)
    task_id = broker.enqueue(
        SignedPackage.dumps({"id": "t", "name": "t", "func": f"{PATH}.record", "args": (1,),
                             "kwargs": {}, "started": timezone.now()})
    )  # fmt: skip
    through_the_cluster(broker, monkeypatch)
    contract(1 in calls, "the worker runs the function a task names by its dotted path")
    [task] = pre_execute_tasks
    contract(
        task.get("ack_id") == task_id, "the pusher puts the queue row's id on the task as ack_id"
    )
    [(_, sender, func, other_arguments)] = [c for c in calls if isinstance(c, tuple)]
    contract(
        sender == "django_q" and func is record and other_arguments == ["signal"],
        "pre_execute is sent with sender, func (the function found) and task, before the task",
    )


@pytest.mark.parametrize("pops", [True, False])
def test_the_monitor_acknowledges_only_a_task_that_still_carries_its_ack_id(pops, monkeypatch):
    broker = use_orm_broker("prompt", monkeypatch)
    func = f"{PATH}.pop_ack_id" if pops else f"{PATH}.record"
    async_task(func, *([] if pops else ["x"]), broker=broker, task_name="ack")
    [row] = OrmQ.objects.all()
    acknowledged = through_the_cluster(broker, monkeypatch)
    contract(
        acknowledged == ([] if pops else [row.pk]),
        "pre_execute's task is the dict the worker hands the monitor once the function returned, "
        "and the monitor acknowledges (broker.acknowledge(ack_id)) only if ack_id is still on it",
    )


def test_the_monitor_acknowledges_a_failed_task_when_ack_failures_is_set(monkeypatch):
    broker = use_orm_broker("prompt", monkeypatch)
    contract(Conf.ACK_FAILURES, 'Q_CLUSTER["ack_failures"] is on in this project')
    async_task(f"{PATH}.fail", broker=broker, task_name="fails")
    [row] = OrmQ.objects.all()
    contract(
        through_the_cluster(broker, monkeypatch) == [row.pk],
        "a failed task is acknowledged with ack_failures (the engine's poller takes the run)",
    )


def test_the_worker_closes_old_connections_before_pre_execute_and_a_done_check_is_honoured(
    monkeypatch,
):
    connection = connections["default"]
    checks: list[str] = []
    monkeypatch.setattr(type(connection), "is_usable", lambda self: checks.append("x") or True)
    broker = use_orm_broker("prompt", monkeypatch)
    seen: list[bool] = []

    def look(**kwargs: Any) -> None:
        seen.append(connection.health_check_done)
        connection.health_check_done = True  # as taskqueue.skip_health_check

    async_task(f"{PATH}.record", "y", broker=broker, task_name="look")
    connection.health_check_done = True
    pre_execute.connect(look, weak=False, dispatch_uid="contract-look")
    try:
        through_the_cluster(broker, monkeypatch)
        checks.clear()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        pre_execute.disconnect(dispatch_uid="contract-look")
    contract(
        seen == [False],
        "the worker closes old connections (Django resets health_check_done) before pre_execute",
    )
    contract(not checks, "Django skips its health check while health_check_done is set")
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    contract(checks == ["x"], "Django checks a connection's health once after it is reset")


def test_post_spawn_is_sent_in_each_worker_with_its_process_name():
    from multiprocessing import Queue, Value

    from django_q.worker import worker

    seen: list[dict[str, Any]] = []

    def spawned(**kwargs: Any) -> None:
        seen.append(kwargs)

    post_spawn.connect(spawned, weak=False, dispatch_uid="contract-spawn")
    try:
        tasks = Queue()
        tasks.put("STOP")
        worker(tasks, Queue(), Value("f", -1))
    finally:
        post_spawn.disconnect(dispatch_uid="contract-spawn")
    contract(
        len(seen) == 1 and seen[0]["sender"] == "django_q" and "proc_name" in seen[0],
        "post_spawn is sent once as a worker starts, with sender and proc_name",
    )


def test_the_engine_is_connected_to_pre_execute_and_post_spawn():
    contract(
        pre_execute.disconnect(dispatch_uid="durable.before_task"),
        "durable's pre_execute receiver is connected (taskqueue.connect_signals at app start)",
    )
    contract(
        post_spawn.disconnect(dispatch_uid="durable.on_worker_start"),
        "durable's post_spawn receiver is connected",
    )
    taskqueue.connect_signals(before_engine_task, on_worker_spawn)


def test_a_task_lock_is_a_datetime_compared_by_the_database_clock():
    OrmQ.objects.create(key="lock-test", payload="p", lock=timezone.now() - dt.timedelta(1))
    now, params = taskqueue.lock_sql(connections["default"])
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {taskqueue.queue_table()} WHERE key = %s AND lock < {now}",
            ["lock-test", *params],
        )
        contract(cursor.fetchone()[0] == 1, "OrmQ.lock holds a datetime the database compares")


# --- the step pool (durable/runtime/step_pool.py): calls run beside the tasks ---------------


def sleep_past_the_timeout() -> None:
    """A task that outlasts a one-second task timeout."""
    time.sleep(5)


def task_dict(func: Any, *args: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "name": "contract", "func": func, "args": args, "kwargs": {}}


def test_a_workers_loop_returns_after_recycle_tasks_and_after_a_task_timeout(monkeypatch):
    from multiprocessing import Queue, Value

    from django_q.worker import worker

    monkeypatch.setattr(Conf, "RECYCLE", 1)
    tasks, results = Queue(), Queue()
    for n in range(2):
        tasks.put(task_dict(record, n))
    worker(tasks, results, Value("f", -1))
    contract(
        [call for call in calls if not isinstance(call, tuple)] == [0],
        "a worker's loop returns after `recycle` tasks, so its process exits normally (running "
        "the exit hook by which the step pool drains the calls in flight)",
    )
    monkeypatch.setattr(Conf, "RECYCLE", 500)
    tasks, timer = Queue(), Value("f", -1)
    tasks.put(task_dict(sleep_past_the_timeout))
    tasks.put(task_dict(record, "after the timeout"))
    started = time.monotonic()
    worker(tasks, Queue(), timer, timeout=1)
    contract(
        time.monotonic() - started < 4
        and timer.value == 0
        and [call for call in calls if not isinstance(call, tuple)] == [0],
        "a task that outlasts `timeout` is interrupted (SIGALRM in the worker's main thread) and "
        "the loop returns, its process exiting normally: the step pool's calls, on other "
        "threads, are not interrupted but drained",
    )


def register_exit_hook(path: str) -> None:
    """In a child process: note, at its exit, that threading's exit hooks ran."""
    threading._register_atexit(lambda: Path(path).write_text("drained"))


def test_a_worker_process_runs_threadings_exit_hooks_when_its_target_returns(tmp_path):
    from multiprocessing import Process

    marker = tmp_path / "marker"
    child = Process(target=register_exit_hook, args=(str(marker),))
    child.start()
    child.join(30)
    contract(
        marker.exists() and marker.read_text() == "drained",
        "a django-q2 worker (a multiprocessing.Process) runs threading's exit hooks when its "
        "loop returns, where the step pool drains",
    )
