"""The pure replay core: generators against recorded checkpoints, no database."""

from __future__ import annotations

import datetime as dt

from durable.commands import TIMED_OUT, WorkflowContext
from durable.errors import StepFailed
from durable.replay import (
    Completed,
    Crashed,
    Diverged,
    Raised,
    Recorded,
    Resolved,
    Suspend,
    Suspended,
    drive,
)


def add(a: int, b: int) -> int:
    return a + b


def double(x: int) -> int:
    return 2 * x


def sample(ctx: WorkflowContext):
    first = yield ctx.step(add, 1, 2)
    second = yield ctx.transaction(double, first)
    cancel = yield ctx.wait_for_signal("cancel", timeout=5)
    moment = yield ctx.now()
    return {"second": second, "cancelled": cancel is not TIMED_OUT, "at": moment.isoformat()}


class LiveRecorder:
    """An executor that runs steps for real and records what it did, like the engine."""

    def __init__(self, signal: object = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.history: dict[int, Recorded] = {}
        self.signal = signal

    def __call__(self, position, command, recorded):
        self.calls.append((position, command.name))
        if command.kind in ("step", "transaction"):
            value = command.fn(*command.args)
        elif command.kind == "wait":
            value = {"timed_out": True} if self.signal is None else {"payload": self.signal}
        elif command.kind == "now":
            value = "2026-11-25T12:00:00+00:00"
        else:
            raise AssertionError(command)
        self.history[position] = Recorded(command.name, True, value)
        return Resolved(value)


def must_not_execute(position, command, recorded):
    raise AssertionError(f"replay executed {command.name} at {position}")


def test_a_fresh_run_executes_every_command_in_order():
    live = LiveRecorder()
    outcome = drive(sample(WorkflowContext("r1")), {}, live)
    assert outcome == Completed(
        {"second": 6, "cancelled": False, "at": "2026-11-25T12:00:00+00:00"}
    )
    assert live.calls == [(0, "add"), (1, "double"), (2, "wait:cancel"), (3, "now")]


def test_replay_of_a_full_history_runs_nothing_and_returns_the_same_result():
    live = LiveRecorder(signal={"by": "alice"})
    first = drive(sample(WorkflowContext("r1")), {}, live)
    again = drive(sample(WorkflowContext("r1")), live.history, must_not_execute)
    assert again == first
    assert first.value["cancelled"] is True


def test_replay_of_a_partial_history_executes_only_what_is_missing():
    live = LiveRecorder()
    drive(sample(WorkflowContext("r1")), {}, live)
    partial = {pos: rec for pos, rec in live.history.items() if pos < 2}
    resumed = LiveRecorder()
    outcome = drive(sample(WorkflowContext("r1")), partial, resumed)
    assert resumed.calls == [(2, "wait:cancel"), (3, "now")]
    assert isinstance(outcome, Completed) and outcome.value["second"] == 6


def test_a_changed_step_name_diverges_and_names_both():
    history = {0: Recorded("subtract", True, 3)}
    outcome = drive(sample(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged)
    assert outcome.error.position == 0
    assert "subtract" in str(outcome.error) and "add" in str(outcome.error)


def test_a_pending_checkpoint_with_another_name_diverges_too():
    history = {0: Recorded("add", True, 3), 1: Recorded("triple", False, attempts=1)}
    outcome = drive(sample(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged) and outcome.error.recorded == "triple"


def catches(ctx: WorkflowContext):
    try:
        yield ctx.step(add, 1, 1)
    except StepFailed as exc:
        return f"caught {exc.step_name}: {exc.error}"
    return "not raised"


def test_a_recorded_failure_is_raised_inside_the_workflow_on_replay():
    history = {0: Recorded("add", True, error="ValueError: boom")}
    outcome = drive(catches(WorkflowContext("r1")), history, must_not_execute)
    assert outcome == Completed("caught add: ValueError: boom")


def test_a_final_failure_executed_live_is_raised_the_same_way():
    outcome = drive(catches(WorkflowContext("r1")), {}, lambda *_: Raised("ValueError: boom"))
    assert outcome == Completed("caught add: ValueError: boom")


def test_an_exception_in_workflow_code_crashes_the_run():
    def broken(ctx: WorkflowContext):
        value = yield ctx.step(add, 1, 1)
        raise RuntimeError(f"bad {value}")

    outcome = drive(broken(WorkflowContext("r1")), {0: Recorded("add", True, 2)}, must_not_execute)
    assert outcome == Crashed("RuntimeError: bad 2")


def test_yielding_something_that_is_not_a_command_crashes_the_run():
    def wrong(ctx: WorkflowContext):
        yield 42

    outcome = drive(wrong(WorkflowContext("r1")), {}, must_not_execute)
    assert isinstance(outcome, Crashed) and "must yield commands" in outcome.error


def test_suspending_closes_the_generator():
    closed = []

    def waits(ctx: WorkflowContext):
        try:
            yield ctx.wait_for_signal("cancel", timeout=5)
        finally:
            closed.append(True)

    wake = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    outcome = drive(waits(WorkflowContext("r1")), {}, lambda *_: Suspend(wake, "waiting"))
    assert outcome == Suspended(0, Suspend(wake, "waiting"))
    assert closed == [True]


def test_wait_results_decode_to_payload_or_timed_out():
    ctx = WorkflowContext("r1")
    wait = ctx.wait_for_signal("cancel", until="2026-11-25T12:00:00Z")
    assert wait.until == dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert wait.decode({"timed_out": True}) is TIMED_OUT
    assert wait.decode({"payload": None}) is None
    assert wait.decode({"payload": {"a": 1}}) == {"a": 1}
    assert ctx.now().decode("2026-11-25T12:00:00+00:00").tzinfo is not None
