"""Admin: workflow runs with their step timeline and workflow signals, read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from durable import blocking, engine
from durable.models import RunStatus, StepCheckpoint, WorkflowRun, WorkflowSignal


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
    fields = readonly_fields = (
        "position", "name", "kind", "status", "result", "error", "attempts", "deadline",
        "started_at", "finished_at",
    )  # fmt: skip
    ordering = ("position",)
    verbose_name_plural = "Step timeline"


class WorkflowSignalInline(ReadOnlyInline):
    model = WorkflowSignal
    fields = readonly_fields = (
        "name", "payload", "sent_at", "accepted", "reason", "consumed_position", "consumed_at",
    )  # fmt: skip
    verbose_name_plural = "Workflow signals"


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "workflow",
        "status",
        "wake_at",
        "lease_owner",
        "created_at",
        "finished_at",
        "blocked_because",
    )
    list_filter = ("status", "workflow")
    search_fields = ("id",)
    date_hierarchy = "created_at"
    inlines = (StepCheckpointInline, WorkflowSignalInline)
    actions = ("resume_now", "cancel_runs", "retry_blocked")
    readonly_fields = (
        "id", "workflow", "args", "status", "result", "error", "lease_owner", "lease_expires_at",
        "wake_at", "waiting_signal", "enqueued_at", "created_at", "updated_at", "finished_at",
        "workflow_version", "blocked_reason", "blocked_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Resume now (enqueue)")
    def resume_now(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        active = [run.id for run in queryset if not run.is_finished]
        engine.resume(active)
        self.message_user(request, f"Enqueued {len(active)} run(s).", messages.SUCCESS)

    @admin.display(description="blocked because")
    def blocked_because(self, run: WorkflowRun) -> str:
        return run.blocked_reason if run.status == RunStatus.BLOCKED else ""

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("durable.change_workflowrun")

    @admin.action(
        description="Retry blocked runs (replay them on the deployed code)", permissions=["retry"]
    )
    def retry_blocked(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        resumed = blocking.resume_blocked([run.id for run in queryset])
        self.message_user(
            request,
            f"Retrying {len(resumed)} blocked run(s); any the deployed code still cannot replay "
            "will be blocked again.",
            messages.SUCCESS,
        )

    @admin.action(description="Cancel run (stop where it is)")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        cancelled = sum(
            engine.cancel(run.id, f"cancelled in the admin by {request.user}") for run in queryset
        )
        self.message_user(request, f"Cancelled {cancelled} run(s).", messages.SUCCESS)


@admin.register(WorkflowSignal)
class WorkflowSignalAdmin(admin.ModelAdmin):
    list_display = ("run", "name", "accepted", "reason", "sent_at", "consumed_position")
    list_filter = ("name", "accepted")
    search_fields = ("run__id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
