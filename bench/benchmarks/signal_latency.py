"""3. Cancel latency over HTTP against the real processes: from the moment `POST /api/cancel`
answers 200 (accepted) until `GET /api/status` shows the purchase done and CANCELLED.

One purchase at a time (10 s window): buy, wait until its run is parked waiting (read from the
database), cancel, then poll the status every 5 ms on a keep-alive connection. Also reported from
the database alone: run.finished_at - signal.sent_at (no polling in it).
"""

from __future__ import annotations

import time

from bench.lib.context import BenchContext
from bench.lib.httpload import Client, Request
from bench.lib.stats import summary
from devtools.processes import poll_until

WINDOW = "10"
STATUS_POLL = 0.005
GOAL = {"goal": "p50 <= 100", "goal_max": 100.0}


def _one(ctx: BenchContext, client: Client, key: str) -> tuple[float, str] | None:
    """Buy, cancel, poll; the client-side seconds from accepted cancel to visible CANCELLED."""
    from durable.models import WorkflowRun
    from purchases.services import run_id_for

    status, body = client.json(Request("POST", f"/api/buy/{key}", {"item_id": ctx.seed.item_id}))
    if status != 202:
        return None
    run_id = run_id_for(ctx.seed.user.pk, key)
    if not poll_until(
        lambda: WorkflowRun.objects.filter(pk=run_id, status="waiting").exists(), 10, 0.005
    ):
        ctx.result.note(f"{key}: run never parked waiting")
    status, body = client.json(Request("POST", f"/api/cancel/{key}"))
    accepted = time.perf_counter()
    if status != 200 or not body.get("cancelled"):
        ctx.result.note(f"{key}: cancel answered {status} {body}")
        return None
    deadline = accepted + 10
    while time.perf_counter() < deadline:
        status, body = client.json(Request("GET", f"/api/status/{key}"))
        if status == 200 and body.get("status") == "done":
            return time.perf_counter() - accepted, body["result"]["state"]
        time.sleep(STATUS_POLL)
    return None


def run(ctx: BenchContext) -> None:
    from durable.models import WorkflowSignal

    res = ctx.result
    count = ctx.size(100, 25)
    res.settings["window"] = f"{WINDOW} s"
    res.settings["purchases per round"] = f"{count}, one at a time, token auth"
    ctx.start_poller(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW)
    ctx.start_worker(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW)
    _, port = ctx.start_web(ONECLICK_CANCEL_WINDOW_SECONDS=WINDOW)
    client = Client(port, ctx.seed.token_header)
    try:
        for n in range(ctx.rounds):
            visible: list[float] = []
            wrong = 0
            for i in range(count):
                outcome = _one(ctx, client, f"sig{n}-{i}")
                if outcome is None:
                    wrong += 1
                    continue
                seconds, state = outcome
                visible.append(seconds * 1000)
                wrong += state != "PURCHASE_CANCELLED"
            stats = summary(visible)
            res.add(
                "cancel accepted -> CANCELLED visible via GET /api/status: p50",
                "ms",
                stats["p50"],
                **GOAL,
            )
            res.add("cancel accepted -> CANCELLED visible: p95", "ms", stats["p95"])
            res.add("cancel accepted -> CANCELLED visible: max", "ms", stats["max"])
            res.add(
                "purchases not ending CANCELLED or timed out",
                "purchases",
                wrong,
                goal="0",
                goal_max=0,
            )
            server = [
                (finished - sent).total_seconds() * 1000
                for sent, finished in WorkflowSignal.objects.filter(
                    run__purchase__key__startswith=f"sig{n}-", accepted=True
                ).values_list("sent_at", "run__finished_at")
                if finished is not None
            ]
            db_stats = summary(server)
            res.add("database only: signal.sent_at -> run.finished_at p50", "ms", db_stats["p50"])
            res.add("database only: signal.sent_at -> run.finished_at p95", "ms", db_stats["p95"])
            res.add("database only: signal.sent_at -> run.finished_at max", "ms", db_stats["max"])
    finally:
        client.close()
