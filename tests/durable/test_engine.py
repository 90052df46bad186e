"""The engine against a real database, with runs advanced in the test process."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

import durable
from durable.models import CheckpointStatus, RunStatus, StepCheckpoint, WorkflowRun, WorkflowSignal
from durable.ops import recovery
from durable.persistence import store
from durable.runtime.executor import AdvanceOutcome, advance
from durable.transport.poller import poll_once
from tests.durable.example_workflows import FLAKY_CALLS, effect_count
from tests.support.inline import finish
from tests.support.threads import in_threads

pytestmark = pytest.mark.django_db


def test_start_is_idempotent_and_refuses_conflicting_arguments():
    handle, created = durable.start("mail-1", "send_with_undo", "hello", 0.05)
    again, created_again = durable.start("mail-1", "send_with_undo", "hello", 0.05)
    assert created and not created_again
    assert again.run_id == handle.run_id == "mail-1"
    assert WorkflowRun.objects.count() == 1
    with pytest.raises(durable.RunConflict, match="mail-1"):
        durable.start("mail-1", "send_with_undo", "other text", 0.05)
    with pytest.raises(durable.RunConflict):
        durable.start("mail-1", "many_steps", 1, 0, 0)


def test_a_refused_start_leaves_the_callers_transaction_usable():
    durable.start("mail-2", "send_with_undo", "hello", 0.05)
    with transaction.atomic():
        with pytest.raises(durable.RunConflict):
            durable.start("mail-2", "send_with_undo", "other text", 0.05)
        # No savepoint was spent on the used id, and none was needed: the transaction goes on.
        assert WorkflowRun.objects.filter(pk="mail-2", args=["hello", 0.05]).exists()


def test_the_clock_read_in_a_query_is_the_engines_clock():
    durable.start("clock-1", "send_with_undo", "hello", 0.05)
    before = durable.database_now()
    read = (
        WorkflowRun.objects.filter(pk="clock-1")
        .annotate(clock=durable.database_now_expression())
        .values_list("clock", flat=True)
        .get()
    )
    after = durable.database_now()
    assert read.tzinfo is not None and before <= read <= after


def test_unknown_workflow_is_refused():
    with pytest.raises(durable.WorkflowNotRegistered):
        durable.start("x", "no_such_workflow")


def test_send_with_undo_sends_exactly_once_when_nobody_undoes():
    durable.start("mail-2", "send_with_undo", "hello", 0.1)
    assert advance("mail-2") is AdvanceOutcome.SUSPENDED
    run = WorkflowRun.objects.get(pk="mail-2")
    assert run.status == RunStatus.WAITING and run.lease_owner == ""
    assert run.waiting_signal == "undo" and run.wake_at is not None
    runs = finish(["mail-2"])
    assert runs["mail-2"].result == {"sent": True, "receipt": "receipt-for-hello"}
    assert effect_count("sent:mail-2") == 1
    # Advancing a finished run again changes nothing.
    assert advance("mail-2") is AdvanceOutcome.BUSY
    assert effect_count("sent:mail-2") == 1
    timeline = list(StepCheckpoint.objects.filter(run_id="mail-2").values_list("name", "status"))
    assert timeline == [("wait:undo", "done"), ("deliver", "done")]


def test_an_accepted_signal_is_seen_by_the_wait_and_consumed_once():
    durable.start("mail-3", "send_with_undo", "hello", 30)
    advance("mail-3")
    verdict = durable.send_signal("mail-3", "undo", {"by": "alice"})
    assert verdict.accepted and verdict.reason == "accepted"
    run = WorkflowRun.objects.get(pk="mail-3")
    assert run.status == RunStatus.PENDING, "the signal wakes the waiting run at once"
    runs = finish(["mail-3"], timeout=5)
    assert runs["mail-3"].result == {"sent": False, "undone_by": {"by": "alice"}}
    assert effect_count("sent:mail-3") == 0
    signal = WorkflowSignal.objects.get(run_id="mail-3")
    assert signal.consumed_position == 0


def test_a_signal_sent_before_the_wait_is_reached_is_kept_for_it():
    durable.start("mail-4", "send_with_undo", "hello", 30)
    assert durable.send_signal("mail-4", "undo", "early").accepted
    runs = finish(["mail-4"], timeout=5)
    assert runs["mail-4"].result == {"sent": False, "undone_by": "early"}


def test_a_signal_a_step_sends_its_own_run_is_received_in_the_same_advance():
    durable.start("notes-1", "notes_to_self")
    assert advance("notes-1") == AdvanceOutcome.FINISHED
    run = WorkflowRun.objects.get(pk="notes-1")
    assert run.result == "sent from a step of the same run"
    assert WorkflowSignal.objects.get(run_id="notes-1").consumed_position == 1


@pytest.mark.django_db(transaction=True)
def test_a_signal_committed_while_the_lease_waits_for_the_row_is_still_received(monkeypatch):
    """A sender accepted the signal in time and holds the run's row until it commits; the
    executor's lease, started meanwhile, waits for that row. On PostgreSQL the lease statement
    reads other tables as they were when it started, so the signal must be looked for after it.
    The sender commits only once the executor is inside its advance (and, on PostgreSQL, seen
    waiting for the row lock)."""
    from django.db import connection

    from devtools.processes import wait_until
    from durable.runtime.group import GroupTransaction
    from tests.support.threads import backend_pid, waits_for_a_lock

    durable.start("late-commit", "send_with_undo", "hello", 0.05)
    assert advance("late-commit") == AdvanceOutcome.SUSPENDED
    time.sleep(0.1)  # the wait's deadline has passed; the signal was accepted before it
    row_locked, opening = threading.Event(), threading.Event()
    outcomes, executor_pid = [], []
    open_group = GroupTransaction.open

    def open_and_tell(group: GroupTransaction) -> None:
        opening.set()
        open_group(group)

    monkeypatch.setattr(GroupTransaction, "open", open_and_tell)

    def executor() -> None:
        try:
            executor_pid.append(backend_pid())
            assert row_locked.wait(30)
            outcomes.append(advance("late-commit"))
        finally:
            connection.close()

    thread = threading.Thread(target=executor)
    with transaction.atomic():
        run = store.lock_run("late-commit")
        WorkflowSignal.objects.create(run=run, name="undo", payload="in time", accepted=True)
        thread.start()
        row_locked.set()
        assert opening.wait(30), "the executor never began its advance"
        if connection.vendor == "postgresql":
            wait_until(lambda: waits_for_a_lock(executor_pid[0]), 30, 0.01, "no lease waited")
    thread.join(30)
    assert outcomes == [AdvanceOutcome.FINISHED]
    run = WorkflowRun.objects.get(pk="late-commit")
    assert run.result == {"sent": False, "undone_by": "in time"}
    assert effect_count("sent:late-commit") == 0


@pytest.mark.django_db(transaction=True)
def test_an_eager_lease_that_waited_for_a_worker_replays_what_the_worker_wrote():
    """The eager start's lease asks that the run has no checkpoint yet; on PostgreSQL, when it
    waited for the row, it asks that as things were before the wait and may be granted on a run
    a worker advanced meanwhile. That is safe because the executor reads the run's history
    after its lease: it replays what the worker wrote, and the accepted signal still counts."""
    from django.db import connection

    store.create_run("eager-late", "send_with_undo", ["hello", 30], dt.timedelta(0))
    row_locked, outcomes = threading.Event(), []

    def eager_start() -> None:
        try:
            row_locked.wait(5)
            outcomes.append(advance("eager-late", fresh=True))
        finally:
            connection.close()

    thread = threading.Thread(target=eager_start)
    with transaction.atomic():
        store.lock_run("eager-late")
        WorkflowRun.objects.filter(pk="eager-late").update(updated_at=timezone.now())  # SQLite
        thread.start()
        row_locked.set()
        time.sleep(0.5)  # the eager lease is now waiting for this row
        # Meanwhile a worker (the poller took the run) parks it at its wait, and a cancel wakes it.
        assert advance("eager-late") is AdvanceOutcome.SUSPENDED
        assert durable.send_signal("eager-late", "undo", "in time").accepted
    thread.join(10)
    assert len(outcomes) == 1 and outcomes[0] in (AdvanceOutcome.FINISHED, AdvanceOutcome.BUSY)
    runs = finish(["eager-late"], timeout=5)
    assert runs["eager-late"].result == {"sent": False, "undone_by": "in time"}
    assert effect_count("sent:eager-late") == 0
    timeline = StepCheckpoint.objects.filter(run_id="eager-late").values_list("position", "name")
    assert list(timeline.order_by("position")) == [(0, "wait:undo")]


def test_a_signal_after_the_timeout_is_rejected_and_changes_nothing():
    durable.start("mail-5", "send_with_undo", "hello", 0.05)
    finish(["mail-5"])
    verdict = durable.send_signal("mail-5", "undo")
    assert not verdict.accepted and verdict.reason == "run_finished"
    assert WorkflowSignal.objects.get(run_id="mail-5").accepted is False
    assert effect_count("sent:mail-5") == 1


def test_past_the_deadline_the_sender_decides_the_timeout_and_is_rejected():
    durable.start("mail-6", "send_with_undo", "hello", 0.5)
    assert advance("mail-6") is AdvanceOutcome.SUSPENDED  # parks the run at its wait
    time.sleep(0.6)  # the deadline passes with no worker around
    verdict = durable.send_signal("mail-6", "undo")
    assert not verdict.accepted and verdict.reason == "wait_timed_out"
    wait = StepCheckpoint.objects.get(run_id="mail-6", position=0)
    assert wait.status == CheckpointStatus.DONE and wait.result == {"timed_out": True}
    runs = finish(["mail-6"])
    assert runs["mail-6"].result["sent"] is True, "a rejected signal is never seen"


def test_a_wait_deadline_is_fixed_when_first_reached_and_never_moves():
    durable.start("mail-7", "send_with_undo", "hello", 1.5)
    advance("mail-7")
    deadline = StepCheckpoint.objects.get(run_id="mail-7", position=0).deadline
    # A replay before the deadline (e.g. a restarted worker) keeps the same deadline.
    WorkflowRun.objects.filter(pk="mail-7").update(wake_at=None)
    assert advance("mail-7") is AdvanceOutcome.SUSPENDED
    assert StepCheckpoint.objects.get(run_id="mail-7", position=0).deadline == deadline
    assert WorkflowRun.objects.get(pk="mail-7").wake_at == deadline
    runs = finish(["mail-7"])
    assert runs["mail-7"].finished_at >= deadline


def test_every_command_kind_checkpoints_and_replays():
    durable.start("steps-1", "many_steps", 3, 0, 0.05)
    runs = finish(["steps-1"])
    result = runs["steps-1"].result
    assert result["total"] == 0 + 1 + 2 and result["observed"] == 30 and result["signal"] is None
    assert effect_count("effect:steps-1:") == 3
    assert effect_count("observed:steps-1:") == 1
    kinds = list(StepCheckpoint.objects.filter(run_id="steps-1").values_list("kind", flat=True))
    assert kinds == ["transaction"] * 3 + ["step", "now", "wait"]


def test_a_failing_step_is_retried_with_backoff_until_it_succeeds():
    durable.start("flaky-1", "flaky", 2, 3)
    runs = finish(["flaky-1"])
    assert runs["flaky-1"].result == {"outcome": "ok"}
    assert FLAKY_CALLS["flaky-1"] == 3
    assert StepCheckpoint.objects.get(run_id="flaky-1").attempts == 3


def test_a_step_that_always_fails_raises_inside_the_workflow():
    durable.start("flaky-2", "flaky", 5, 2)
    runs = finish(["flaky-2"])
    assert runs["flaky-2"].result == {
        "outcome": "gave up",
        "error": "ConnectionError: attempt 2 failed",
    }
    checkpoint = StepCheckpoint.objects.get(run_id="flaky-2")
    assert checkpoint.status == CheckpointStatus.ERROR and checkpoint.attempts == 2


def test_replay_divergence_blocks_the_run_naming_both_steps():
    durable.start("steps-2", "many_steps", 2, 0, 30)
    advance("steps-2")
    StepCheckpoint.objects.filter(run_id="steps-2", position=1).update(name="old_step_name")
    WorkflowRun.objects.filter(pk="steps-2").update(wake_at=None)
    assert advance("steps-2") is AdvanceOutcome.BLOCKED
    run = WorkflowRun.objects.get(pk="steps-2")
    assert run.status == RunStatus.BLOCKED and run.error == ""
    assert "old_step_name" in run.blocked_reason and "record_effect" in run.blocked_reason
    assert effect_count("effect:steps-2:") == 2, "nothing ran again"


def test_durable_sleep_holds_no_lease_and_now_is_stable():
    durable.start("sleep-1", "sleeper", 1.0)
    assert advance("sleep-1") is AdvanceOutcome.SUSPENDED
    run = WorkflowRun.objects.get(pk="sleep-1")
    assert run.lease_owner == "" and run.lease_expires_at is None
    assert run.wake_at - run.created_at >= dt.timedelta(seconds=1.0)
    assert advance("sleep-1") is AdvanceOutcome.BUSY, "not due before its wake-up time"
    runs = finish(["sleep-1"])
    woke = dt.datetime.fromisoformat(runs["sleep-1"].result)
    assert woke >= run.wake_at


def test_the_lease_admits_one_executor_and_fences_a_stale_one():
    durable.start("lease-1", "send_with_undo", "hello", 30)
    ttl = dt.timedelta(seconds=30)
    assert store.acquire_lease("lease-1", "owner-a", ttl)
    assert not store.acquire_lease("lease-1", "owner-b", ttl)
    assert advance("lease-1") is AdvanceOutcome.BUSY
    # Once the lease has expired another executor takes over, and the old one is fenced off.
    WorkflowRun.objects.filter(pk="lease-1").update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert store.acquire_lease("lease-1", "owner-b", ttl)
    with pytest.raises(durable.LeaseLost), transaction.atomic():
        store.fence("lease-1", "owner-a", ttl)


def test_operator_cancel_stops_a_run_and_fences_its_executor():
    durable.start("cancel-1", "send_with_undo", "hello", 30)
    advance("cancel-1")
    assert durable.cancel("cancel-1", "test")
    assert not durable.cancel("cancel-1")
    assert WorkflowRun.objects.get(pk="cancel-1").status == RunStatus.CANCELLED
    assert advance("cancel-1") is AdvanceOutcome.BUSY
    assert not durable.send_signal("cancel-1", "undo").accepted


def test_poll_once_enqueues_due_runs_once_per_redelivery_interval():
    durable.start("poll-1", "sleeper", 0.5)
    advance("poll-1")
    assert poll_once() == [], "not due yet"
    time.sleep(0.6)
    assert poll_once() == ["poll-1"]
    assert poll_once() == [], "claimed: not enqueued twice"


@pytest.mark.parametrize("eager", [False, True], ids=["worker", "eager"])
def test_a_workflow_returning_a_value_json_cannot_hold_fails_naming_its_type(eager):
    durable.start("returns-set", "returns_a_set", eager=eager)
    if not eager:
        assert advance("returns-set") is AdvanceOutcome.FINISHED
    run = WorkflowRun.objects.get(pk="returns-set")
    assert run.status == RunStatus.FAILED and run.result is None
    assert run.error.startswith("TypeError: the workflow returned a value JSON cannot hold: ")
    assert "Object of type set is not JSON serializable" in run.error
    assert poll_once() == [], "finished: not handed out again"


def wait_until_due(run_id: str) -> None:
    """Until the run's wake-up time has come by the engine's clock (no timing asserted)."""
    wake_at = WorkflowRun.objects.get(pk=run_id).wake_at
    while store.db_now() < wake_at:
        time.sleep(0.02)


def test_resuming_a_run_that_is_not_due_does_not_keep_the_poller_from_it_when_due():
    durable.start("resume-early", "sleeper", 0.5)
    assert advance("resume-early") is AdvanceOutcome.SUSPENDED
    # "Resume now" before its wake-up time: its task finds it not due yet.
    assert recovery.resume(["resume-early"]) == {"resume-early": "enqueued"}
    assert advance("resume-early") is AdvanceOutcome.BUSY
    wait_until_due("resume-early")
    assert poll_once() == ["resume-early"], "due: the poller hands it out at once"


def test_resume_stuck_workflows_lists_and_advances_inline(capsys):
    durable.start("stuck-1", "send_with_undo", "hello", 0.01)
    WorkflowRun.objects.filter(pk="stuck-1").update(
        status=RunStatus.RUNNING, lease_owner="dead-worker",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=5),
    )  # fmt: skip
    call_command("resume_stuck_workflows", "--dry-run")
    out = capsys.readouterr().out
    assert "stuck-1" in out and "dead-worker" in out and "dry run" in out
    assert WorkflowRun.objects.get(pk="stuck-1").status == RunStatus.RUNNING
    call_command("resume_stuck_workflows", "--inline", "--run-id", "stuck-1")
    time.sleep(0.05)
    finish(["stuck-1"])
    assert effect_count("sent:stuck-1") == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_starts_of_one_id_make_one_run():
    errors = in_threads(20, lambda _: durable.start("same-id", "send_with_undo", "hello", 1))
    assert errors == []
    assert WorkflowRun.objects.filter(pk="same-id").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_run_one_executes():
    durable.start("race-1", "many_steps", 1, 0.5, 0)
    outcomes: list[AdvanceOutcome] = []
    assert in_threads(2, lambda _: outcomes.append(advance("race-1"))) == []
    assert sorted(o.value for o in outcomes) == ["busy", "finished"]
    assert effect_count("effect:race-1:") == 1


def test_runs_woken_together_travel_in_few_tasks_and_all_advance():
    from django_q.models import OrmQ

    from durable import tasks

    run_ids = [f"batch-{n}" for n in range(9)]
    for run_id in run_ids:
        durable.start(run_id, "sleeper", 0.01)
        advance(run_id)
    time.sleep(0.05)
    OrmQ.objects.all().delete()
    assert sorted(poll_once()) == sorted(run_ids)
    assert OrmQ.objects.count() == 3, "9 due runs spread over 3 tasks of 3"
    outcome = tasks.advance_batch_task(run_ids)
    assert outcome == {"finished": 9}
    assert all(WorkflowRun.objects.get(pk=r).status == RunStatus.SUCCEEDED for r in run_ids)


def test_a_batch_shares_commits_but_a_failing_run_takes_back_only_its_own_writes(monkeypatch):
    from durable.runtime import executor

    for run_id in ("mixed-ok-1", "mixed-bad", "mixed-ok-2"):
        durable.start(run_id, "send_with_undo", "hello", 0)
    durable.start("mixed-steps", "many_steps", 2, 0, 0)  # a plain step commits mid-batch
    durable.start("mixed-busy", "sleeper", 0)
    assert store.acquire_lease("mixed-busy", "someone-else", dt.timedelta(60))
    real_finish_run = store.finish_run

    def finish_run(run_id: str, *args, **kwargs):
        # After the run's step wrote its effect: that write must be taken back too.
        if run_id == "mixed-bad":
            raise RuntimeError("the database went away for this run")
        return real_finish_run(run_id, *args, **kwargs)

    monkeypatch.setattr(store, "finish_run", finish_run)
    order = ["mixed-ok-1", "mixed-steps", "mixed-bad", "mixed-busy", "mixed-ok-2"]
    assert executor.advance_many(order) == {"finished": 3, "error": 1, "busy": 1}

    runs = {run.pk: run for run in WorkflowRun.objects.all()}
    for run_id in ("mixed-ok-1", "mixed-ok-2", "mixed-steps"):
        assert runs[run_id].status == RunStatus.SUCCEEDED, run_id
    assert effect_count("sent:mixed-ok-") == 2
    assert effect_count("effect:mixed-steps:") == 2
    assert effect_count("observed:mixed-steps:") == 1
    bad = runs["mixed-bad"]
    assert bad.status == RunStatus.PENDING and bad.lease_owner == "", "given back, not held"
    assert not StepCheckpoint.objects.filter(run_id="mixed-bad").exists()
    assert effect_count("sent:mixed-bad") == 0
    assert runs["mixed-busy"].lease_owner == "someone-else"
    monkeypatch.undo()
    assert advance("mixed-bad") is AdvanceOutcome.FINISHED
    assert effect_count("sent:mixed-bad") == 1


def test_the_step_timeline_records_when_each_command_started_and_finished():
    durable.start("times-1", "many_steps", 2, 0.02, 0)
    finish(["times-1"])
    for checkpoint in StepCheckpoint.objects.filter(run_id="times-1"):
        assert checkpoint.started_at <= checkpoint.finished_at, checkpoint


def test_a_signal_accepted_in_time_wins_even_if_the_worker_comes_after_the_deadline():
    durable.start("mail-8", "send_with_undo", "hello", 1.0)
    assert advance("mail-8") is AdvanceOutcome.SUSPENDED  # parked at its wait
    assert durable.send_signal("mail-8", "undo", "in time").accepted
    time.sleep(1.1)  # the deadline passes before any worker takes the run
    late = durable.send_signal("mail-8", "undo", "too late")
    assert not late.accepted and late.reason == "wait_decided"
    wait = StepCheckpoint.objects.get(run_id="mail-8", position=0)
    assert wait.status == CheckpointStatus.PENDING, "the late sender did not decide a timeout"
    runs = finish(["mail-8"])
    assert runs["mail-8"].result == {"sent": False, "undone_by": "in time"}
    assert effect_count("sent:mail-8") == 0


def test_the_prompt_orm_broker_hands_out_tasks_first_in_first_out_once(monkeypatch):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    from durable.transport.broker import PromptORMBroker

    monkeypatch.setattr(Conf, "BULK", 2)  # at most two tasks per claim (Q_BULK)
    broker = PromptORMBroker(list_key="fifo-test")
    ids = [broker.enqueue(f"payload-{n}") for n in range(5)]
    first = PromptORMBroker(list_key="fifo-test").dequeue()
    second = PromptORMBroker(list_key="fifo-test").dequeue()
    assert [task_id for task_id, _ in first] == ids[:2]
    assert [task_id for task_id, _ in second] == ids[2:4]
    assert first[0][1] == "payload-0"
    assert OrmQ.objects.filter(key="fifo-test").count() == 5, "taken tasks stay until acked"
    broker.acknowledge(ids[0])
    assert OrmQ.objects.filter(key="fifo-test").count() == 4
    assert [task_id for task_id, _ in broker.dequeue()] == ids[4:]


@pytest.mark.django_db(transaction=True)
def test_a_starting_pusher_hands_out_again_the_engine_tasks_a_killed_cluster_had_claimed(
    monkeypatch,
):
    from django_q.conf import Conf

    from durable import tasks
    from durable.transport import taskqueue
    from durable.transport.broker import PromptORMBroker

    monkeypatch.setattr(Conf, "BULK", 2)

    key = taskqueue.broker().list_key
    durable.start("orphan-1", "send_with_undo", "hello", 0)  # its task is an engine task
    plain = PromptORMBroker(list_key=key).enqueue("someone else's task")
    killed = PromptORMBroker(list_key=key)
    in_hand = killed.dequeue()  # then the cluster is killed with both
    [engine_task, plain_task] = [task_id for task_id, _ in in_hand]
    assert plain_task == plain
    restarted = PromptORMBroker(list_key=key)
    assert [task_id for task_id, _ in restarted.dequeue()] == [engine_task]
    assert restarted.dequeue() is None, "a task that is not the engine's keeps its claim"
    assert tasks.advance_task("orphan-1") == "finished"


@pytest.mark.django_db(transaction=True)
def test_only_the_pushers_claims_skip_waiting_for_the_disk():
    from django.db import connection, connections

    from durable.transport.broker import PromptORMBroker

    def durability(conn) -> str:
        with conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                cursor.execute("SHOW synchronous_commit")
            else:
                cursor.execute("PRAGMA synchronous")  # 2 = FULL, 1 = NORMAL
            return str(cursor.fetchone()[0])

    strict = "on" if connection.vendor == "postgresql" else "2"
    assert durability(connection) == strict
    PromptORMBroker(list_key="relaxed-test").dequeue()
    assert durability(connection) == ("off" if connection.vendor == "postgresql" else "1")
    other = connections.create_connection("default")  # any other process's connection
    try:
        assert durability(other) == strict
    finally:
        other.close()
    connection.close()  # the next test gets a connection with the project's settings


@pytest.mark.django_db(transaction=True)
def test_an_idle_broker_wakes_as_soon_as_a_task_is_committed(monkeypatch):
    """PostgreSQL: LISTEN/NOTIFY. SQLite: a wake-up socket beside the database file."""
    from django.db import connection
    from django_q.conf import Conf

    from durable.transport.broker import PromptORMBroker

    monkeypatch.setattr(Conf, "POLL", 5.0)  # without the notification a wait lasts 5 s
    found: list[tuple[float, list]] = []

    def consume() -> None:
        consumer = PromptORMBroker(list_key="notify-test")
        try:
            give_up = time.monotonic() + 15
            while not found and time.monotonic() < give_up:
                tasks = consumer.dequeue()
                if tasks:
                    found.append((time.monotonic(), tasks))
        finally:
            connection.close()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.5)  # the consumer is waiting on an empty queue by now
    enqueued_at = time.monotonic()
    task_id = PromptORMBroker(list_key="notify-test").enqueue("payload")
    thread.join()
    [(found_at, tasks)] = found
    assert [task for task, _ in tasks] == [task_id]
    assert found_at - enqueued_at < 2.0, "woken by the enqueue, not by the 5 s poll"


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_parks_the_run_in_this_process_without_a_task(settings):
    from django_q.models import OrmQ

    settings.DURABLE = {**settings.DURABLE, "EAGER_GRACE_SECONDS": 30}
    durable.start("eager-1", "send_with_undo", "hello", 30, eager=True)
    run = WorkflowRun.objects.get(pk="eager-1")
    assert run.status == RunStatus.WAITING and run.waiting_signal == "undo"
    assert OrmQ.objects.count() == 0, "no worker round trip"
    assert StepCheckpoint.objects.get(run_id="eager-1").deadline == run.wake_at


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_parks_in_the_callers_transaction_and_rolls_back_with_it():
    with pytest.raises(RuntimeError, match="the caller failed"), transaction.atomic():
        handle, created = durable.start("eager-rb", "send_with_undo", "hello", 30, eager=True)
        assert created and handle.status == RunStatus.WAITING and handle.waiting_for == "undo"
        assert StepCheckpoint.objects.filter(run_id="eager-rb").count() == 1
        raise RuntimeError("the caller failed after the start")
    assert not WorkflowRun.objects.filter(pk="eager-rb").exists()
    assert not StepCheckpoint.objects.filter(run_id="eager-rb").exists()


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_with_nothing_to_wait_for_ends_in_the_callers_commit(settings):
    from django_q.models import OrmQ

    settings.DURABLE = {**settings.DURABLE, "EAGER_GRACE_SECONDS": 30}
    handle, _ = durable.start("eager-end", "send_with_undo", "hello", 0, eager=True)
    assert handle.status == RunStatus.SUCCEEDED
    assert handle.result == {"sent": True, "receipt": "receipt-for-hello"}
    assert effect_count("sent:eager-end") == 1
    assert OrmQ.objects.count() == 0, "no worker round trip"


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_stops_before_a_plain_step_and_goes_on_after_the_commit(settings):
    settings.DURABLE = {**settings.DURABLE, "EAGER_GRACE_SECONDS": 30}
    observed_in_the_transaction = []
    with transaction.atomic():
        durable.start("eager-plain", "many_steps", 1, 0, 0, eager=True)
        # The transactional step ran in the caller's transaction; the plain step did not.
        observed_in_the_transaction.append(
            (effect_count("effect:eager-plain:"), effect_count("observed:eager-plain:"))
        )
    assert observed_in_the_transaction == [(1, 0)]
    run = WorkflowRun.objects.get(pk="eager-plain")
    assert run.status == RunStatus.SUCCEEDED, "advanced on right after the commit"
    assert run.result["total"] == 0 and run.result["observed"] == 10
    assert (effect_count("effect:eager-plain:"), effect_count("observed:eager-plain:")) == (1, 1)


@pytest.fixture
def eager_starter_dies(monkeypatch):
    """The process that starts a run eagerly dies right after its transaction commits."""
    monkeypatch.setattr(durable.engine, "_advance_eagerly", lambda run_id: None)


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_that_stopped_after_its_first_checkpoints_is_due_at_once(
    settings, eager_starter_dies
):
    settings.DURABLE = {**settings.DURABLE, "EAGER_GRACE_SECONDS": 3600}
    durable.start("eager-due", "many_steps", 1, 0, 0, eager=True)
    assert poll_once() == ["eager-due"], "no grace: it has checkpoints"
    finish(["eager-due"])
    assert (effect_count("effect:eager-due:"), effect_count("observed:eager-due:")) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_an_eager_start_whose_process_died_is_taken_by_the_poller_after_the_grace(
    settings, eager_starter_dies
):
    settings.DURABLE = {**settings.DURABLE, "EAGER_GRACE_SECONDS": 0.2}
    # A plain step first: nothing runs in the caller's transaction, all after its commit.
    durable.start("eager-2", "flaky", 0, 1, eager=True)
    assert not StepCheckpoint.objects.filter(run_id="eager-2").exists()
    assert poll_once() == [], "within the grace the starter may still advance it"
    time.sleep(0.25)
    assert poll_once() == ["eager-2"]
    finish(["eager-2"])
    assert FLAKY_CALLS["eager-2"] == 1
    assert WorkflowRun.objects.get(pk="eager-2").result == {"outcome": "ok"}
