"""Property tests: the key rule, the API's answer to any bad key, and the pure replay core."""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import quote

from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable.core.commands import TIMED_OUT, Command, WorkflowContext
from durable.core.replay import (
    Completed,
    Diverged,
    Raised,
    Recorded,
    Resolved,
    Suspend,
    Suspended,
    drive,
)
from durable.errors import StepFailed
from purchases.keys import is_valid_key

KEY_ALPHABET = string.ascii_letters + string.digits + "_-"
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)
# The replay properties draw each command's outcome as the workflow reaches it.
REPLAY_SETTINGS = settings(
    PROPERTY_SETTINGS, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)


def follows_the_rule(key: object) -> bool:
    """DESIGN.md §5, spelled out: 1 to 64 characters of A-Z a-z 0-9 _ -."""
    return isinstance(key, str) and 1 <= len(key) <= 64 and all(c in KEY_ALPHABET for c in key)


# Mostly near-valid keys: the rule's own alphabet around the length limits, with look-alikes
# mixed in (non-ASCII digits and letters, separators, a trailing newline).
keys = st.one_of(
    st.text(alphabet=KEY_ALPHABET, max_size=70),
    st.text(alphabet=KEY_ALPHABET + "\n\t ./?#%:+=é٣ｚß\x00", max_size=70),
    st.builds(lambda a, b: a + b, st.text(KEY_ALPHABET, min_size=1, max_size=64), st.just("\n")),
    st.text(max_size=70),
)


@PROPERTY_SETTINGS
@given(keys)
def test_is_valid_key_is_exactly_the_key_rule(key: str) -> None:
    assert is_valid_key(key) == follows_the_rule(key)


@PROPERTY_SETTINGS
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text()), st.floats()))
def test_only_strings_are_keys(value: object) -> None:
    assert not is_valid_key(value)


# --- the API's answer to a bad key ---------------------------------------------------------------


def test_the_api_answers_a_bad_key_with_400_and_never_500(db: None, make_user: Any) -> None:
    client = Client()
    client.force_login(make_user("key-fuzzer"))

    @settings(
        PROPERTY_SETTINGS,
        max_examples=100,
        # One signed-in client serves every example.
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(key=keys.filter(lambda k: not follows_the_rule(k)))
    def bad_key(key: str) -> None:
        for method, route in (("post", "buy"), ("post", "cancel"), ("get", "status")):
            path = f"/api/{route}/{quote(key, safe='')}"
            if method == "post":
                response = client.post(path, {"item_id": "widget-001"}, "application/json")
            else:
                response = client.get(path)
            assert response["Content-Type"].startswith("application/json"), path
            body = response.json()
            if key == "" or "/" in key:
                # No key at all in the path, or a path with more segments: no such route.
                assert response.status_code == 404, (path, body)
            else:
                assert response.status_code == 400, (path, body)
                assert body["field"] == "key"

    bad_key()


# --- the replay core ------------------------------------------------------------------------------

KINDS = ("step", "transaction", "wait", "sleep", "now")
NAMES = ("charge", "reserve", "ship", "notify", "audit")
specs = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMES)), max_size=8)
non_empty_specs = st.lists(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMES)), min_size=1, max_size=8
)


def never_called(*args: Any) -> Any:
    raise AssertionError("the step's function ran; only the executor may decide that")


def build(ctx: WorkflowContext, kind: str, name: str) -> Command:
    if kind == "step":
        return ctx.step(never_called, name=name)
    if kind == "transaction":
        return ctx.transaction(never_called, name=name)
    if kind == "wait":
        return ctx.wait_for_signal(name, timeout=1.0)
    if kind == "sleep":
        return ctx.sleep(1.0)
    return ctx.now()


def workflow_from(
    spec: list[tuple[str, str]], closed: list[int], rename: dict[int, str] | None = None
) -> Generator[Any, Any, list[Any]]:
    """A workflow made of `spec`'s commands. An even step result adds a step (so the path depends
    on recorded values); failed steps are caught (so errors flow back in too). `rename` changes
    the name of the command yielded at a position: the code changed under a run in flight."""
    ctx = WorkflowContext("prop-run")
    seen: list[Any] = []
    position = 0
    try:
        for kind, name in spec:
            commands = [(build(ctx, kind, name), kind in ("step", "transaction"))]
            while commands:
                command, may_branch = commands.pop(0)
                if rename and position in rename:
                    command = dataclasses.replace(command, name=rename[position])
                position += 1
                try:
                    value = yield command
                except StepFailed as exc:
                    seen.append(("failed", exc.step_name, exc.error))
                    continue
                seen.append("TIMED_OUT" if value is TIMED_OUT else value)
                if may_branch and value % 2 == 0:
                    commands.append((ctx.step(never_called, name=f"{name}-even"), False))
        return seen
    finally:
        closed.append(position)


def outcome_strategy(command: Command) -> st.SearchStrategy[Resolved | Raised]:
    if command.kind in ("step", "transaction"):
        return st.one_of(
            st.integers(-1000, 1000).map(Resolved),
            st.sampled_from(["boom", "card declined", ""]).map(
                lambda e: Raised(f"ValueError: {e}")
            ),
        )
    if command.kind == "wait":
        return st.one_of(
            st.just(Resolved({"timed_out": True})),
            st.integers(0, 9).map(lambda p: Resolved({"signal_id": 1, "payload": p})),
        )
    if command.kind == "now":
        return st.integers(0, 2**31).map(
            lambda t: Resolved(dt.datetime.fromtimestamp(t, dt.UTC).isoformat())
        )
    return st.just(Resolved(None))


def as_recorded(command: Command, outcome: Resolved | Raised) -> Recorded:
    if isinstance(outcome, Raised):
        return Recorded(command.name, done=True, error=outcome.error, attempts=3)
    return Recorded(command.name, done=True, result=outcome.recorded, attempts=1)


def recording(
    draw: Callable[[Any], Any], history: dict[int, Recorded], outcomes: dict[int, Any]
) -> Callable[[int, Command, Recorded | None], Resolved | Raised | Suspend]:
    def execute(position: int, command: Command, recorded: Recorded | None) -> Any:
        assert recorded is None and position not in history
        outcome = draw(outcome_strategy(command))
        outcomes[position] = outcome
        history[position] = as_recorded(command, outcome)
        return outcome

    return execute


def refusing(position: int, command: Command, recorded: Recorded | None) -> Any:
    raise AssertionError(f"execute called for recorded position {position} ({command.name})")


@REPLAY_SETTINGS
@given(spec=specs, data=st.data())
def test_replay_against_a_recorded_history_gives_the_same_result_without_executing(
    spec: list[tuple[str, str]], data: st.DataObject
) -> None:
    closed: list[int] = []
    history: dict[int, Recorded] = {}
    outcomes: dict[int, Any] = {}
    first = drive(workflow_from(spec, closed), history, recording(data.draw, history, outcomes))
    assert isinstance(first, Completed)
    replayed = drive(workflow_from(spec, closed), history, refusing)
    assert replayed == first
    assert closed == [len(history), len(history)], "the generator is closed after each drive"


@REPLAY_SETTINGS
@given(spec=specs, data=st.data())
def test_a_run_suspended_anywhere_and_resumed_ends_as_an_uninterrupted_one(
    spec: list[tuple[str, str]], data: st.DataObject
) -> None:
    closed: list[int] = []
    reference: dict[int, Recorded] = {}
    outcomes: dict[int, Any] = {}
    expected = drive(
        workflow_from(spec, closed), reference, recording(data.draw, reference, outcomes)
    )
    suspend_at = data.draw(st.sets(st.sampled_from(sorted(reference)))) if reference else set()
    history: dict[int, Recorded] = {}
    executed: list[int] = []

    def execute(position: int, command: Command, recorded: Recorded | None) -> Any:
        assert recorded == history.get(position), "execute sees the position's open checkpoint"
        assert recorded is None or not recorded.done
        executed.append(position)
        if position in suspend_at and position not in history:
            # A wait that is still open, or a step between retries: started, no result yet.
            history[position] = Recorded(command.name, done=False, attempts=1)
            return Suspend(None, "property test")
        history[position] = as_recorded(command, outcomes[position])
        return outcomes[position]

    for _ in range(len(suspend_at) + 1):
        outcome = drive(workflow_from(spec, closed), history, execute)
        if not isinstance(outcome, Suspended):
            break
    assert outcome == expected
    assert history == reference
    # Each command ran live once, plus once more where it had been suspended.
    assert sorted(executed) == sorted([*reference, *suspend_at])


@REPLAY_SETTINGS
@given(spec=non_empty_specs, data=st.data())
def test_a_changed_step_name_diverges_naming_both(
    spec: list[tuple[str, str]], data: st.DataObject
) -> None:
    closed: list[int] = []
    history: dict[int, Recorded] = {}
    drive(workflow_from(spec, closed), history, recording(data.draw, history, {}))
    position = data.draw(st.sampled_from(sorted(history)))
    old = history[position].name
    new = f"{old}-v2"
    outcome = drive(workflow_from(spec, closed, rename={position: new}), history, refusing)
    assert isinstance(outcome, Diverged)
    assert (outcome.error.position, outcome.error.recorded, outcome.error.found) == (
        position,
        old,
        new,
    )
    assert old in str(outcome.error) and new in str(outcome.error)
    assert closed[-1] == position + 1, "nothing ran after the divergent command"
