"""Each step's idempotency key, and a payment provider that charges once per key."""

from __future__ import annotations

import pytest

import durable
import tests.durable.step_workflows  # noqa: F401 - registers the workflows
from durable.models import RunStatus, WorkflowRun
from tests.durable.paying import charge_through_kills, paid
from tests.durable.step_workflows import KEYS_SEEN
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


@pytest.mark.crash
@pytest.mark.django_db(transaction=True)
def test_one_charge_per_confirmed_purchase_across_kills_inside_the_charge_and_takeovers():
    run_ids = [f"pay-{n}" for n in range(4)]
    # Both workers are killed after being charged and before they could checkpoint it, twice.
    ledger = charge_through_kills("pay_then_confirm", run_ids)
    assert len(ledger["attempts"]) > len(run_ids), "some charges were attempted again"
    charges = {charge["key"]: charge for charge in ledger["charges"]}
    assert sorted(charges) == sorted(f"{run_id}:0" for run_id in run_ids)
    for run_id in run_ids:
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == RunStatus.SUCCEEDED, run.error
        charge_id = charges[f"{run_id}:0"]["id"]
        assert run.result == {"state": "CONFIRMED", "charge_id": charge_id}
        assert paid(run_id) == [f"paid:{run_id}:{charge_id}"]
