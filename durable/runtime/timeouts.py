"""Calling a step's function with a time limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from durable.errors import StepTimedOut


def call_with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], seconds: float) -> Any:
    """`fn(*args)`: its value or its exception when it answered within `seconds`, else
    StepTimedOut (its late answer, value or exception, is ignored).

    The call is waited for, never abandoned while it runs: Python cannot stop it, and a retry
    started beside it would run a second copy under the same idempotency key (a payment
    provider answers that one with a conflict, or charges twice without a key)."""
    started = time.monotonic()
    try:
        value = fn(*args)
    except Exception as exc:
        if time.monotonic() - started > seconds:
            raise _timed_out(seconds) from exc
        raise
    if time.monotonic() - started > seconds:
        raise _timed_out(seconds)
    return value


def _timed_out(seconds: float) -> StepTimedOut:
    return StepTimedOut(f"no answer within {seconds:g} s; its late answer was ignored")
