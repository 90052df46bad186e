"""The engine's Prometheus gauges read from the database at scrape time: runs by status, overdue
runs, queue depth, plain steps' calls in flight, live pollers and workers."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from durable.models import FINISHED_STATUSES, RunStatus, WorkflowRun
from durable.ops import run_reports


class EngineCollector(Collector):
    """Figures read from the database at scrape time: runs by status (every status that is not
    finished), overdue runs and the oldest one's age, queue depth, live pollers and workers.
    Register it on the registry of the scrape only: it queries the database."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
        yield GaugeMetricFamily(
            "durable_step_calls_in_flight",
            "Plain steps' calls in flight in the cluster (attempt recorded, lease held, no answer "
            "yet).",
            value=engine.calls_in_flight,
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
