"""The engine's Prometheus counters and histograms, recorded in the process where things happen.

Web processes, django-q2 workers and the poller each record their share; with
PROMETHEUS_MULTIPROC_DIR set (the project's settings set it), prometheus_client keeps every
process's figures in files there, and a scrape of any web process adds them up. The run counts,
overdue runs and queue depth are read from the database at scrape time instead
(durable/ops/collector.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# From a few milliseconds (a step that only writes) to minutes (a retried call).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

STEP_SECONDS = Histogram(
    "durable_step_duration_seconds",
    "Time of one attempt of a workflow step, by step name and outcome (ok, error).",
    ["step", "outcome"],
    buckets=DURATION_BUCKETS,
)
STEP_FAILURES = Counter(
    "durable_step_failures_total", "Failed attempts of workflow steps, by step name.", ["step"]
)
WAIT_TIMEOUT_LATENESS = Histogram(
    "durable_wait_timeout_lateness_seconds",
    "How long after its deadline a timed-out wait for a workflow signal resumed its run.",
    buckets=DURATION_BUCKETS,
)
SIGNAL_TO_RESUME = Histogram(
    "durable_workflow_signal_to_resume_seconds",
    "From a workflow signal being sent to the waiting run resuming with it.",
    buckets=DURATION_BUCKETS,
)
# Per worker process, added up over the live ones: how many of the step pools' slots are taken
# (calls in flight) and how many there are. Taken == slots: new calls wait in the queue.
STEP_SLOTS_TAKEN = Gauge(
    "durable_step_slots_taken",
    "Step pool slots taken (calls in flight or being recorded), over live worker processes.",
    multiprocess_mode="livesum",
)
STEP_SLOTS = Gauge(
    "durable_step_slots",
    "Step pool slots (DURABLE_STEPS_IN_FLIGHT per worker process), over live worker processes.",
    multiprocess_mode="livesum",
)
RUN_TRANSITIONS = Counter(
    "durable_run_transitions_total",
    "Run status changes, by workflow and new status (finished runs: succeeded, failed, ...).",
    ["workflow", "status"],
)


def step_finished(name: str, seconds: float, ok: bool) -> None:
    """Record one attempt of step `name` that took `seconds` and succeeded (`ok`) or failed."""
    STEP_SECONDS.labels(step=name, outcome="ok" if ok else "error").observe(max(seconds, 0.0))
    if not ok:
        STEP_FAILURES.labels(step=name).inc()


def wait_timed_out(lateness_seconds: float) -> None:
    """Record a wait that resumed as timed out, `lateness_seconds` after its deadline."""
    WAIT_TIMEOUT_LATENESS.observe(max(lateness_seconds, 0.0))


def signal_resumed(latency_seconds: float) -> None:
    """Record a wait resumed by a workflow signal sent `latency_seconds` before."""
    SIGNAL_TO_RESUME.observe(max(latency_seconds, 0.0))


def run_transition(workflow: str, status: str) -> None:
    """Count a run of `workflow` entering `status`."""
    RUN_TRANSITIONS.labels(workflow=workflow, status=status).inc()
