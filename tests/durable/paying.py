"""Real worker processes killed while they charge through the fake payment provider."""

from __future__ import annotations

import signal
import sys
from typing import Any

from django.contrib.auth.models import Group

import durable
from devtools.ports import free_port
from devtools.processes import Process, poller, running, wait_for_http, wait_until, worker
from durable.models import WorkflowRun
from tests.support import fake_psp
from tests.support.environment import process_env


def charge_through_kills(workflow: str, run_ids: list[str], kills: int = 2) -> dict[str, Any]:
    """Start `workflow(psp_url, "9.99")` as each of `run_ids` under a cluster of 2 workers and a
    poller. `kills` times, the provider records a charge per worker and holds its answer back,
    and the cluster is SIGKILLed (after being charged, before checkpointing) and started again.
    Then the provider answers; returns its ledger once every run has finished."""
    port = free_port()
    psp_url = f"http://127.0.0.1:{port}"
    env = process_env(
        DURABLE_WORKFLOW_MODULES="tests.durable.step_workflows",
        DURABLE_LEASE_SECONDS="2",
        Q_WORKERS="2",
    )
    psp = Process("psp", [sys.executable, "-m", "tests.support.fake_psp", str(port)], env)
    with running(psp):
        wait_for_http(psp_url)
        cluster = worker(env)
        with running(cluster, poller(env)):
            for kill in range(1, kills + 1):
                fake_psp.hold(psp_url, True)
                if kill == 1:
                    for run_id in run_ids:
                        durable.start(run_id, workflow, psp_url, "9.99")
                wait_until(
                    lambda n=kill: len(fake_psp.ledger(psp_url)["attempts"]) >= 2 * n, 60,
                    message=cluster.log(),
                )  # fmt: skip
                cluster.kill(signal.SIGKILL)
                cluster.start()
            fake_psp.hold(psp_url, False)
            wait_until(
                lambda: all(WorkflowRun.objects.get(pk=r).is_finished for r in run_ids), 120,
                message=cluster.log(),
            )  # fmt: skip
        return fake_psp.ledger(psp_url)


def paid(run_id: str) -> list[str]:
    """The payments `record_payment` recorded for the run."""
    return list(
        Group.objects.filter(name__startswith=f"paid:{run_id}:").values_list("name", flat=True)
    )
