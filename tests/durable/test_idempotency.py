"""Each step's idempotency key, and a payment provider that charges once per key."""

from __future__ import annotations

import signal
import sys

import pytest
from django.contrib.auth.models import Group

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from devtools.ports import free_port
from devtools.processes import Process, poller, running, wait_for_http, wait_until, worker
from durable.models import RunStatus, WorkflowRun
from tests.durable.step_workflows import KEYS_SEEN
from tests.support import fake_psp
from tests.support.environment import process_env
from tests.support.inline import finish


@pytest.mark.django_db
def test_a_steps_key_is_the_same_on_every_attempt_and_differs_between_steps():
    durable.start("keys-1", "two_keyed_steps", 2)
    durable.start("keys-2", "two_keyed_steps", 0)
    runs = finish(["keys-1", "keys-2"])
    assert KEYS_SEEN["keys-1"] == ["keys-1:0"] * 3 + ["keys-1:1"]
    assert runs["keys-1"].result == ["keys-1:0", "keys-1:1"]
    assert runs["keys-2"].result == ["keys-2:0", "keys-2:1"]
    with pytest.raises(RuntimeError, match="only known inside a step"):
        durable.current_step()


def paid(run_id: str) -> list[str]:
    return list(
        Group.objects.filter(name__startswith=f"paid:{run_id}:").values_list("name", flat=True)
    )


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_one_charge_per_confirmed_purchase_across_kills_inside_the_charge_and_takeovers():
    port = free_port()
    psp_url = f"http://127.0.0.1:{port}"
    env = process_env(
        DURABLE_WORKFLOW_MODULES="tests.durable.step_workflows",
        DURABLE_LEASE_SECONDS="2",
        Q_WORKERS="2",
    )
    psp = Process("psp", [sys.executable, "-m", "tests.support.fake_psp", str(port)], env)
    run_ids = [f"pay-{n}" for n in range(4)]
    with running(psp):
        wait_for_http(psp_url)
        cluster = worker(env)
        with running(cluster, poller(env)):
            for kill in (1, 2):
                # The provider records each charge and then holds its answer back: both workers
                # are killed after being charged and before they could checkpoint it.
                fake_psp.hold(psp_url, True)
                if kill == 1:
                    for run_id in run_ids:
                        durable.start(run_id, "pay_then_confirm", psp_url, "9.99")
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
        ledger = fake_psp.ledger(psp_url)
    assert len(ledger["attempts"]) > len(run_ids), "some charges were attempted again"
    charges = {charge["key"]: charge for charge in ledger["charges"]}
    assert sorted(charges) == sorted(f"{run_id}:0" for run_id in run_ids)
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        charge_id = charges[f"{run_id}:0"]["id"]
        assert run.result == {"state": "CONFIRMED", "charge_id": charge_id}
        assert paid(run_id) == [f"paid:{run_id}:{charge_id}"]
