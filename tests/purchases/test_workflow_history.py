"""CI's guard against an incompatible change of the purchase workflow: a recorded history of a
real confirmed purchase must still replay on the code in this checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable.core import registry
from durable.testing import assert_replays
from purchases import services

CONFIRMED = Path(__file__).parent / "histories" / "one_click_buy_v1_confirmed.json"


def test_the_recorded_purchase_history_replays_on_this_code():
    assert_replays(CONFIRMED)


def test_an_incompatible_change_fails_the_replay_naming_the_difference(monkeypatch):
    def checkout_as_plain_step(ctx, item_id, cancel_until):
        yield ctx.wait_for_signal("cancel", until=cancel_until)
        yield ctx.step(services.checkout, ctx.run_id)

    monkeypatch.setitem(registry._workflows, "one_click_buy", {1: checkout_as_plain_step})
    with pytest.raises(AssertionError, match=r"transaction 'checkout'.*step 'checkout'"):
        assert_replays(CONFIRMED)


def test_dropping_the_version_fails_the_replay(monkeypatch):
    versions = registry._workflows["one_click_buy"]
    monkeypatch.setitem(registry._workflows, "one_click_buy", {2: versions[1]})
    with pytest.raises(AssertionError, match="no worker has one_click_buy v1"):
        assert_replays(CONFIRMED)
