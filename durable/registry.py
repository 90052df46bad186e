"""Workflows registered under stable names, so a run can be replayed by any process."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from durable.commands import WorkflowContext
from durable.errors import WorkflowNotRegistered

WorkflowFunction = Callable[..., Generator[Any, Any, Any]]

_workflows: dict[str, WorkflowFunction] = {}


def workflow(name: str) -> Callable[[WorkflowFunction], WorkflowFunction]:
    """Register a generator function as the workflow `name`.

    The name is stored with each run, so keep it stable: renaming it orphans runs in flight.
    Registering two different functions under one name is refused.
    """

    def register(fn: WorkflowFunction) -> WorkflowFunction:
        existing = _workflows.get(name)
        if existing is not None and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"workflow {name!r} is already registered to {existing.__qualname__}")
        _workflows[name] = fn
        fn.workflow_name = name  # type: ignore[attr-defined]
        return fn

    return register


def get_workflow(name: str) -> WorkflowFunction:
    """The function registered as `name`; WorkflowNotRegistered if there is none."""
    try:
        return _workflows[name]
    except KeyError:
        raise WorkflowNotRegistered(
            f"no workflow is registered as {name!r}; is the module that defines it imported "
            f"by an app's ready()?"
        ) from None


def workflow_name(fn_or_name: WorkflowFunction | str) -> str:
    """The registered name of a workflow given as a function or a name."""
    if isinstance(fn_or_name, str):
        get_workflow(fn_or_name)
        return fn_or_name
    name = getattr(fn_or_name, "workflow_name", None)
    if name is None:
        raise WorkflowNotRegistered(f"{fn_or_name!r} is not registered with @workflow(name)")
    return name


def instantiate(name: str, run_id: str, args: list[Any]) -> Generator[Any, Any, Any]:
    """A fresh generator for the workflow `name`, ready to be replayed from its start."""
    return get_workflow(name)(WorkflowContext(run_id), *args)
