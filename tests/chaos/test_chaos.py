"""DESIGN.md §4 under chaos: the Procfile's real processes SIGKILLed at random (short variant).

The long variant is `python bench/chaos.py`; both run devtools/chaos/driver.py. A failure prints the
seed: ONECLICK_CHAOS_SEED=<seed> replays the same plan (the timings of a real run still vary).
"""

from __future__ import annotations

import os

import pytest

from devtools.chaos.driver import ChaosConfig, run_chaos
from tests.support.environment import process_env

pytestmark = [pytest.mark.crash, pytest.mark.django_db(transaction=True)]


def test_invariants_hold_while_web_worker_and_poller_are_killed_at_random() -> None:
    seed = int(os.environ["ONECLICK_CHAOS_SEED"]) if os.environ.get("ONECLICK_CHAOS_SEED") else None
    config = ChaosConfig(purchases=80, span_seconds=25.0, kills=6, seed=seed)
    report = run_chaos(config, process_env())
    print(report.summary())
    assert not report.violations, f"{report.summary()}\n" + "\n".join(report.violations)
    # The run exercised what it claims to, so that a quiet run cannot pass for a proof.
    verdicts = {cancel.verdict for cancel in report.cancels}
    assert {"accepted", "refused"} <= verdicts
    assert report.counts["confirmed"] and report.counts["cancelled"]
    assert len(report.kills) >= 5
