"""Workflows registered under stable names and versions, so a run can be replayed by any process
that has the code it started on."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from typing import Any

from durable.core.commands import WorkflowContext
from durable.errors import WorkflowArgumentsMismatch, WorkflowNotRegistered

WorkflowFunction = Callable[..., Generator[Any, Any, Any]]

_workflows: dict[str, dict[int, WorkflowFunction]] = {}


def workflow(name: str, *, version: int = 1) -> Callable[[WorkflowFunction], WorkflowFunction]:
    """Register a generator function as version `version` (default 1) of the workflow `name`.

    The name and version are stored with each run, so keep them stable: renaming a workflow or
    dropping a version blocks its runs in flight. Versions of one name live side by side; new
    runs start on the highest. Registering two different functions as one version is refused.
    """
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"workflow {name!r}: version must be a positive integer, not {version!r}")

    def register(fn: WorkflowFunction) -> WorkflowFunction:
        versions = _workflows.setdefault(name, {})
        existing = versions.get(version)
        if existing is not None and existing.__qualname__ != fn.__qualname__:
            raise ValueError(
                f"workflow {name!r} v{version} is already registered to {existing.__qualname__}"
            )
        versions[version] = fn
        fn.workflow_name = name  # type: ignore[attr-defined]
        fn.workflow_version = version  # type: ignore[attr-defined]
        return fn

    return register


def get_workflow(name: str, version: int | None = None) -> WorkflowFunction:
    """The function registered as `name` at `version` (default: the highest version);
    WorkflowNotRegistered if there is none."""
    versions = _workflows.get(name)
    if not versions:
        raise WorkflowNotRegistered(
            f"no workflow is registered as {name!r}; is the module that defines it imported "
            f"by an app's ready()?"
        )
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        have = ", ".join(f"v{v}" for v in sorted(versions))
        raise WorkflowNotRegistered(f"no worker has {name} v{chosen} (this process has {have})")
    return versions[chosen]


def latest_version(name: str) -> int:
    """The highest version registered for `name`, the one new runs start on."""
    get_workflow(name)
    return max(_workflows[name])


def workflow_name(fn_or_name: WorkflowFunction | str) -> str:
    """The registered name of a workflow given as a function or a name."""
    if isinstance(fn_or_name, str):
        get_workflow(fn_or_name)
        return fn_or_name
    name = getattr(fn_or_name, "workflow_name", None)
    if name is None:
        raise WorkflowNotRegistered(f"{fn_or_name!r} is not registered with @workflow(name)")
    return name


def registered() -> list[str]:
    """Every workflow version this process can advance, as sorted "name@version" strings."""
    return sorted(f"{name}@{v}" for name, versions in _workflows.items() for v in versions)


def instantiate(
    name: str, run_id: str, args: list[Any], version: int = 1
) -> Generator[Any, Any, Any]:
    """A fresh generator for version `version` of the workflow `name`, ready to be replayed from
    its start. WorkflowNotRegistered if this process lacks that version;
    WorkflowArgumentsMismatch if the stored arguments no longer bind to its signature (checked
    before the body runs, so a TypeError raised inside the workflow is not taken for one)."""
    fn = get_workflow(name, version)
    ctx = WorkflowContext(run_id)
    signature = _signature(fn)
    try:
        signature.bind(ctx, *args)
    except TypeError as exc:
        raise WorkflowArgumentsMismatch(
            f"the arguments stored for {name} v{version} no longer fit its signature "
            f"{signature}: {exc}"
        ) from None
    return fn(ctx, *args)


@functools.cache
def _signature(fn: WorkflowFunction) -> inspect.Signature:
    # Read once per function: every advance of every run binds its arguments.
    return inspect.signature(fn)
