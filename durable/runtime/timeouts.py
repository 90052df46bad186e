"""Calling a step's function with a time limit."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from durable.errors import StepTimedOut


def call_with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], seconds: float) -> Any:
    """`fn(*args)` in a thread of its own, with this thread's context variables: its value, or
    its exception, or StepTimedOut once `seconds` have passed. A call that times out is
    abandoned, not stopped (Python cannot stop a thread): it runs on and its outcome is ignored;
    the database connections it opened are closed when it ends."""
    outcome: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def call() -> None:
        try:
            outcome["value"] = context.run(fn, *args)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()  # this thread's own
            done.set()

    threading.Thread(target=call, name=f"step {getattr(fn, '__name__', fn)}", daemon=True).start()
    if not done.wait(seconds):
        raise StepTimedOut(f"no answer within {seconds:g} s; the call was abandoned")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
