"""A workflow and changed versions of it, for the deploy-safety tests.

`deploy_flow` (v1) is registered on import. The other functions are the same workflow after a
code change; a test (or a process, through DURABLE_WORKFLOW_MODULES and `install_change`)
deploys one in place of v1 with `deploy`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

from django.contrib.auth.models import Group

from durable import TIMED_OUT, WorkflowContext, workflow
from durable.core import registry


def mark(run_id: str, label: str) -> str:
    Group.objects.create(name=f"deploy:{run_id}:{label}")
    return label


@workflow("deploy_flow")
def deploy_flow(ctx: WorkflowContext, label: str, timeout: float) -> Generator[Any, Any, Any]:
    """Wait for "go" (or the timeout), then mark the run done exactly once."""
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    done = yield ctx.transaction(mark, ctx.run_id, "done")
    return {"go": go is not TIMED_OUT, "done": done, "label": label}


def inserted_step(ctx: WorkflowContext, label: str, timeout: float) -> Generator[Any, Any, Any]:
    """Incompatible: a step inserted before the wait."""
    yield ctx.transaction(mark, ctx.run_id, "audit")
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    done = yield ctx.transaction(mark, ctx.run_id, "done")
    return {"go": go is not TIMED_OUT, "done": done, "label": label}


def patched_step(ctx: WorkflowContext, label: str, timeout: float) -> Generator[Any, Any, Any]:
    """The same change made safely with a patch."""
    if (yield ctx.patched("audit")):
        yield ctx.transaction(mark, ctx.run_id, "audit")
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    done = yield ctx.transaction(mark, ctx.run_id, "done")
    return {"go": go is not TIMED_OUT, "done": done, "label": label}


def new_parameter(
    ctx: WorkflowContext, label: str, timeout: float, extra: str
) -> Generator[Any, Any, Any]:
    """Incompatible: a required parameter the stored arguments lack."""
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    return {"go": go is not TIMED_OUT, "extra": extra}


def body_type_error(ctx: WorkflowContext, label: str, timeout: float) -> Generator[Any, Any, Any]:
    """A bug inside the body (not a signature change): the run fails."""
    go = yield ctx.wait_for_signal("go", timeout=timeout)
    return len(go)  # TypeError: object of type ... has no len()


CHANGES = {
    "inserted_step": inserted_step,
    "patched_step": patched_step,
    "new_parameter": new_parameter,
    "body_type_error": body_type_error,
}


def deploy(name: str, fn: Any, version: int = 1) -> None:
    """Replace what `name` v`version` runs with `fn` (as a deploy of changed code would)."""
    fn.workflow_name, fn.workflow_version = name, version
    registry._workflows.setdefault(name, {})[version] = fn


# A process given DEPLOY_CHANGE runs that change instead of v1 (its "new code").
if os.environ.get("DEPLOY_CHANGE"):
    deploy("deploy_flow", CHANGES[os.environ["DEPLOY_CHANGE"]])
