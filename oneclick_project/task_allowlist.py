"""Only the engine's own functions run as django-q2 tasks.

A django-q2 worker imports and calls whatever dotted path a task names (`pydoc.locate` in
django_q/worker.py). The tasks it takes come signed (DJANGO_SECRET_KEY) from the broker, and the
only code that signs one is django_q.tasks.async_task: every task, whether code enqueued it or
django-q2's scheduler made it from a Schedule row (a row any ORM write or an admin page could
create), passes through its `pre_enqueue` signal first,
where `refuse_unknown_tasks` rewrites a task whose function or result hook is not on the
allowlist: the function becomes `refused_task`, which fails naming the path without importing
it, and the hook is dropped. The allowlist is the engine's task paths plus Q_TASK_ALLOWLIST, a
setting from the environment: chosen by whoever deploys, never typed by staff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from durable.transport import dispatch

logger = logging.getLogger("oneclick.tasks")


def dotted_path(func: Callable[..., Any] | str) -> str:
    """The dotted path of a task's function, as django-q2 would resolve it."""
    if isinstance(func, str):
        return func
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


def retention_task_path() -> str:
    """The engine's retention, the one task the engine's schedules run (engine_schedules):
    its permanent path in durable/tasks.py."""
    return dispatch.PRUNE_TASK_PATH


def allowed_task_paths() -> frozenset[str]:
    """Every function path a task may name: the engine's tasks (advancing runs, the workers'
    heartbeat probe, retention), this module's refusal, and Q_TASK_ALLOWLIST."""
    return frozenset(
        {
            *dispatch.ALL_TASK_PATHS,
            REFUSED_TASK_PATH,
            *getattr(settings, "Q_TASK_ALLOWLIST", ()),
        }
    )


class TaskRefused(Exception):
    """A task named a function that is not on the allowlist: it was not run."""


def refused_task(path: str) -> None:
    """What a refused task runs instead of its function: it fails, naming the path."""
    raise TaskRefused(f"{path!r} is not one of the engine's tasks: refused, nothing was run")


REFUSED_TASK_PATH = dotted_path(refused_task)


def refuse_unknown_tasks(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's pre_enqueue receiver: make a task whose function or hook is not allowed
    harmless before it is signed. The task is still enqueued (a scheduler's other schedules
    carry on), and fails in the worker with TaskRefused."""
    allowed = allowed_task_paths()
    path = dotted_path(task.get("func", ""))
    if path not in allowed:
        logger.error("refused a django-q2 task naming %r: not one of the engine's tasks", path)
        task.update(func=REFUSED_TASK_PATH, args=(path,), kwargs={})
    hook = task.get("hook")
    if hook is not None and dotted_path(hook) not in allowed:
        logger.error("dropped the result hook %r of a django-q2 task", dotted_path(hook))
        del task["hook"]
