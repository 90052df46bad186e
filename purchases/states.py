"""The names the purchase's workflow shares with its readers: the workflow, its workflow signal, and
the final states its runs return (stored in each run's result, so they never change)."""

from __future__ import annotations

WORKFLOW = "one_click_buy"
CANCEL_SIGNAL = "cancel"

STATE_PREFIX = "PURCHASE_"
CONFIRMED = f"{STATE_PREFIX}CONFIRMED"
CANCELLED = f"{STATE_PREFIX}CANCELLED"
FAILED = f"{STATE_PREFIX}FAILED"
FINAL_STATES = (CONFIRMED, CANCELLED, FAILED)


def short_state(state: str) -> str:
    """A final state as the pages and the admin name it: "CONFIRMED" for PURCHASE_CONFIRMED."""
    return state.removeprefix(STATE_PREFIX)
