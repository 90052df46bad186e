"""Admin: workflow runs with their step timeline (to the millisecond) and workflow signals,
read-only; overdue runs are marked with what keeps them; resume and cancel for those who may
change runs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import DateTimeField, QuerySet, Value
from django.http import HttpRequest
from django.utils.html import format_html

from durable import engine
from durable.models import RunStatus, StepCheckpoint, WorkflowRun, WorkflowSignal
from durable.ops import recovery, run_reports
from durable.persistence import store


def in_milliseconds(field: str, description: str) -> Callable[[object, object], str]:
    """An admin column showing the datetime `field` in UTC to the millisecond (Django's own
    format stops at the minute, too coarse for a 5 s window)."""

    @admin.display(description=description, ordering=field)
    def show(model_admin: object, obj: object) -> str:
        return run_reports.timestamp(getattr(obj, field))

    return show


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StepCheckpointInline(ReadOnlyInline):
    model = StepCheckpoint
    # Results and errors shortened (the whole text on hover) so the timeline fits the page.
    fields = readonly_fields = (
        "position", "name", "kind", "status", "short_result", "short_error", "attempts",
        "deadline_ms", "started_ms", "finished_ms", "took",
    )  # fmt: skip
    ordering = ("position",)
    verbose_name_plural = "Step timeline"

    deadline_ms = in_milliseconds("deadline", "deadline")
    started_ms = in_milliseconds("started_at", "started")
    finished_ms = in_milliseconds("finished_at", "finished")

    @admin.display(description="duration")
    def took(self, checkpoint: StepCheckpoint) -> str:
        return run_reports.duration(checkpoint.started_at, checkpoint.finished_at)

    @admin.display(description="result")
    def short_result(self, checkpoint: StepCheckpoint) -> str:
        return _shortened(json.dumps(checkpoint.result) if checkpoint.result is not None else "")

    @admin.display(description="error")
    def short_error(self, checkpoint: StepCheckpoint) -> str:
        return _shortened(checkpoint.error)


def _shortened(text: str, limit: int = 80) -> str:
    """The first line of `text`, at most `limit` characters, the whole text as its title."""
    line = text.splitlines()[0] if text else ""
    short = line if len(line) <= limit and line == text else f"{line[:limit]}\u2026"
    return format_html('<span title="{}" style="overflow-wrap: anywhere">{}</span>', text, short)


class WorkflowSignalInline(ReadOnlyInline):
    model = WorkflowSignal
    fields = readonly_fields = (
        "name", "payload", "sent_ms", "accepted", "reason", "consumed_position", "consumed_ms",
    )  # fmt: skip
    verbose_name_plural = "Workflow signals"

    sent_ms = in_milliseconds("sent_at", "sent")
    consumed_ms = in_milliseconds("consumed_at", "consumed")


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Overdue now")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]):
        if self.value() == "yes":
            return run_reports.overdue_runs(queryset, store.db_now())
        return queryset


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "workflow",
        "status",
        "overdue",
        "wake_at_ms",
        "lease_owner",
        "created_ms",
        "finished_ms",
        "blocked_because",
    )
    list_filter = ("status", OverdueFilter, "workflow")
    search_fields = ("id",)
    date_hierarchy = "created_at"
    inlines = (StepCheckpointInline, WorkflowSignalInline)
    actions = ("resume_now", "cancel_runs", "retry_blocked")
    # `fields` too: the change page is read-only, and would otherwise show each model field
    # beside its millisecond column (Lease expires at and lease expires, ...).
    fields = readonly_fields = (
        "id", "workflow", "args", "status", "overdue", "result", "error", "lease_owner",
        "lease_expires_ms", "wake_at_ms", "waiting_signal", "enqueued_ms", "created_ms",
        "updated_ms", "finished_ms", "workflow_version", "blocked_kind", "blocked_reason",
        "blocked_ms",
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowRun]:
        # The engine's clock, read once for the page: whether a run is overdue.
        return (
            super()
            .get_queryset(request)
            .annotate(checked_at=Value(store.db_now(), output_field=DateTimeField()))
        )

    @admin.display(description="overdue")
    def overdue(self, run: WorkflowRun) -> str:
        """Empty for a run on time; for an overdue one, by how long and why, in red."""
        checked_at = getattr(run, "checked_at", None) or store.db_now()
        late = run_reports.overdue_by(run, checked_at)
        if late is None:
            return ""
        return format_html(
            '<strong style="color: #ba2121">overdue {}s</strong>: {}', f"{late:.1f}",
            _why_late(run, checked_at),
        )  # fmt: skip

    wake_at_ms = in_milliseconds("wake_at", "wake-up")
    lease_expires_ms = in_milliseconds("lease_expires_at", "lease expires")
    enqueued_ms = in_milliseconds("enqueued_at", "enqueued")
    created_ms = in_milliseconds("created_at", "created")
    updated_ms = in_milliseconds("updated_at", "updated")
    finished_ms = in_milliseconds("finished_at", "finished")
    blocked_ms = in_milliseconds("blocked_at", "blocked at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A run's rows are its durable state; deleting them fails or strands the workflow.
        # Finished runs are pruned by `prune_workflows`.
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Resume and cancel need the model's change permission; a viewer may only look."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Resume now (enqueue)", permissions=["operate"])
    def resume_now(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        active = [run.id for run in queryset if not run.is_finished]
        recovery.resume(active)
        self.message_user(request, f"Enqueued {len(active)} run(s).", messages.SUCCESS)

    @admin.display(description="blocked because")
    def blocked_because(self, run: WorkflowRun) -> str:
        return run.blocked_reason if run.status == RunStatus.BLOCKED else ""

    @admin.action(
        description="Retry blocked runs (replay them on the deployed code)",
        permissions=["operate"],
    )
    def retry_blocked(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        resumed = recovery.resume_blocked([run.id for run in queryset])
        self.message_user(
            request,
            f"Retrying {len(resumed)} blocked run(s); any the deployed code still cannot replay "
            "will be blocked again.",
            messages.SUCCESS,
        )

    @admin.action(description="Cancel run (stop where it is)", permissions=["operate"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        cancelled = sum(
            engine.cancel(run.id, f"cancelled in the admin by {request.user}") for run in queryset
        )
        self.message_user(request, f"Cancelled {cancelled} run(s).", messages.SUCCESS)


def _why_late(run: WorkflowRun, now: dt.datetime) -> str:
    """What keeps an overdue run from running, as far as its row tells."""
    if run.lease_owner and run.lease_expires_at and run.lease_expires_at > now:
        until = run_reports.timestamp(run.lease_expires_at)
        return f"held by {run.lease_owner} (lease until {until})"
    if run.lease_owner:
        return f"its worker {run.lease_owner} stopped renewing the lease"
    last_error = (
        StepCheckpoint.objects.filter(run=run).exclude(error="").order_by("-position").first()
    )
    if last_error is not None:
        return f"step {last_error.name} failing: {last_error.error.splitlines()[0][:200]}"
    if run.enqueued_at is not None:
        waited = (now - run.enqueued_at).total_seconds()
        return f"enqueued {waited:.1f}s ago, not picked up by a worker"
    return "not enqueued: is a poller running?"


@admin.register(WorkflowSignal)
class WorkflowSignalAdmin(admin.ModelAdmin):
    list_display = ("run", "name", "accepted", "reason", "sent_at", "consumed_position")
    list_filter = ("name", "accepted")
    search_fields = ("run__id",)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # an accepted cancel must never be lost

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
