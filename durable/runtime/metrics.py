"""The engine's Prometheus metrics, recorded in the process where things happen.

Web processes, django-q2 workers and the poller each record their share; with
PROMETHEUS_MULTIPROC_DIR set (the project's settings set it), prometheus_client keeps every
process's figures in files there, and a scrape of any web process adds them up. The run counts,
overdue runs and queue depth are read from the database at scrape time (`EngineCollector`).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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


class EngineCollector(Collector):
    """Figures read from the database at scrape time: runs by status (every status that is not
    finished), overdue runs and the oldest one's age, queue depth, live pollers and workers.
    Register it on the registry of the scrape only: it queries the database."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from durable.models import FINISHED_STATUSES, RunStatus, WorkflowRun
        from durable.ops import run_reports

        unfinished = [status for status in RunStatus if status not in FINISHED_STATUSES]
        counts = dict(
            WorkflowRun.objects.filter(status__in=unfinished)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        runs = GaugeMetricFamily("durable_runs", "Runs not finished, by status.", labels=["status"])
        for status in unfinished:
            runs.add_metric([str(status)], counts.get(status, 0))
        yield runs
        engine = run_reports.engine_status()
        yield GaugeMetricFamily(
            "durable_runs_overdue",
            "Active runs whose wake-up time is more than DURABLE_OVERDUE_SECONDS past.",
            value=engine.overdue,
        )
        yield GaugeMetricFamily(
            "durable_oldest_overdue_seconds",
            "How far past its wake-up time the most overdue run is (0 when none is).",
            value=engine.oldest_overdue_seconds or 0.0,
        )
        if engine.queue_depth is not None:
            yield GaugeMetricFamily(
                "durable_queue_depth",
                "Tasks waiting in the broker's queue.",
                value=engine.queue_depth,
            )
        alive = GaugeMetricFamily(
            "durable_processes_alive",
            "Pollers and django-q2 workers seen within DURABLE_HEALTH_STALE_SECONDS.",
            labels=["kind"],
        )
        alive.add_metric(["poller"], engine.pollers.alive)
        alive.add_metric(["worker"], engine.workers.alive)
        yield alive
