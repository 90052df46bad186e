"""The pure replay core: generators against recorded checkpoints, no database."""

from __future__ import annotations

import datetime as dt
import functools

import pytest

from durable.core.commands import TIMED_OUT, WorkflowContext
from durable.core.replay import (
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
from durable.errors import StepFailed


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


# --- stricter divergence detection -------------------------------------------------------------


def test_the_same_name_with_another_kind_diverges():
    history = {0: Recorded("add", True, 3, kind="transaction")}
    outcome = drive(sample(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged)
    assert "records transaction 'add' but the workflow now yields step 'add'" in str(outcome.error)


def short(ctx: WorkflowContext):
    first = yield ctx.step(add, 1, 2, name="add")
    return first


def test_history_beyond_where_the_code_now_ends_diverges():
    history = {0: Recorded("add", True, 3, kind="step"), 1: Recorded("double", True, 6)}
    outcome = drive(short(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged)
    assert outcome.error.position == 1 and outcome.error.recorded == "double"
    assert str(outcome.error).endswith("but the workflow now ends")


def test_history_beyond_where_the_code_now_raises_diverges_instead_of_crashing():
    def raises(ctx: WorkflowContext):
        yield ctx.step(add, 1, 2)
        raise RuntimeError("new code")

    history = {0: Recorded("add", True, 3), 1: Recorded("double", True, 6)}
    outcome = drive(raises(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged)
    assert str(outcome.error).endswith("now raises RuntimeError: new code")


def test_history_beyond_a_command_the_code_would_run_live_diverges_and_runs_nothing():
    history = {0: Recorded("add", True, 3), 2: Recorded("wait:cancel", True, {"timed_out": True})}
    outcome = drive(sample(WorkflowContext("r1")), history, must_not_execute)
    assert isinstance(outcome, Diverged) and outcome.error.position == 2


def test_a_lambda_or_a_partial_step_needs_a_name():
    ctx = WorkflowContext("r1")
    with pytest.raises(ValueError, match="name="):
        ctx.step(lambda: 1)
    with pytest.raises(ValueError, match="name="):
        ctx.transaction(functools.partial(add, 1), 2)
    assert ctx.step(lambda: 1, name="one").name == "one"
    assert ctx.step(add, 1, 2).name == "add"


# --- patches ---------------------------------------------------------------------------------


def patched_flow(ctx: WorkflowContext):
    if (yield ctx.patched("audit")):
        yield ctx.step(double, 5)
    cancel = yield ctx.wait_for_signal("cancel", timeout=5)
    return {"cancelled": cancel is not TIMED_OUT}


def old_flow(ctx: WorkflowContext):
    cancel = yield ctx.wait_for_signal("cancel", timeout=5)
    return {"cancelled": cancel is not TIMED_OUT}


def test_a_patch_reached_live_is_true_and_recorded_and_its_replay_is_true_again():
    live = LiveRecorder()
    live_patch = _with_patches(live)
    assert drive(patched_flow(WorkflowContext("r1")), {}, live_patch) == Completed(
        {"cancelled": False}
    )
    assert live.calls == [(0, "patch:audit"), (1, "double"), (2, "wait:cancel")]
    again = drive(patched_flow(WorkflowContext("r1")), live.history, must_not_execute)
    assert again == Completed({"cancelled": False})


def test_a_run_that_went_past_the_patch_on_old_code_takes_the_old_branch_at_no_position():
    old = LiveRecorder()
    drive(old_flow(WorkflowContext("r1")), {}, old)
    assert old.calls == [(0, "wait:cancel")]
    replayed = drive(patched_flow(WorkflowContext("r1")), old.history, must_not_execute)
    assert replayed == Completed({"cancelled": False})


def test_a_run_parked_at_its_wait_on_old_code_replays_the_patched_code_without_the_new_step():
    parked = {0: Recorded("wait:cancel", False, kind="wait")}
    resumed = LiveRecorder(signal="stop")
    outcome = drive(patched_flow(WorkflowContext("r1")), parked, resumed)
    assert resumed.calls == [(0, "wait:cancel")], "no marker, no new step for an old run"
    assert outcome == Completed({"cancelled": True})


def test_a_patch_after_the_point_an_old_run_reached_is_taken_live():
    def later_patch(ctx: WorkflowContext):
        yield ctx.wait_for_signal("cancel", timeout=5)
        if (yield ctx.patched("receipt")):
            return "new"
        return "old"

    parked = {0: Recorded("wait:cancel", False, kind="wait")}
    live = LiveRecorder()
    outcome = drive(later_patch(WorkflowContext("r1")), parked, _with_patches(live))
    assert outcome == Completed("new") and live.calls[-1] == (1, "patch:receipt")
    done = {0: Recorded("wait:cancel", True, {"timed_out": True}, kind="wait"),
            1: Recorded("double", True, 6, kind="step")}  # fmt: skip
    old_past_it = drive(later_patch(WorkflowContext("r1")), done, must_not_execute)
    assert isinstance(old_past_it, Diverged), "old code went on with another command: diverged"


def test_two_patches_one_recorded_one_new():
    def two(ctx: WorkflowContext):
        first = yield ctx.patched("second")
        again = yield ctx.patched("first")
        return [first, again]

    history = {0: Recorded("patch:first", True, True, kind="patch")}
    assert drive(two(WorkflowContext("r1")), history, must_not_execute) == Completed([False, True])


def _with_patches(live: LiveRecorder):
    def execute(position, command, recorded):
        if command.kind == "patch":
            live.calls.append((position, command.name))
            live.history[position] = Recorded(command.name, True, True, kind="patch")
            return Resolved(True)
        return live(position, command, recorded)

    return execute
