"""Workflow state kept in the application's database: runs, step checkpoints, workflow signals.

The models are plain; the queries of a run's life live in `durable.persistence.store`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # The code deployed cannot replay the run (divergence, missing workflow or version, arguments
    # that no longer fit): it keeps its state and resumes once code that can replay it is back.
    BLOCKED = "blocked", "Blocked"


class BlockedKind(models.TextChoices):
    """Why a run is blocked, for the code that resumes it (the reason beside it is for people)."""

    # Its history diverges from the code, or its arguments no longer fit: an operator resumes it
    # once code that can replay it is deployed.
    CANNOT_REPLAY = "cannot_replay", "Code cannot replay it"
    # No live worker has its workflow version: resumed when a worker that has it is seen.
    VERSION_MISSING = "version_missing", "No worker has its version"
    # A plain step's outcome stayed unknown past its `unknown_for`: only an operator resumes it
    # (the step is tried again under the same idempotency key, for a new horizon).
    OUTCOME_UNKNOWN = "outcome_unknown", "A step's outcome stayed unknown"


ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class WorkflowRun(models.Model):
    """One execution of a workflow; its id is the caller's idempotency key."""

    id = models.CharField(primary_key=True, max_length=200)
    workflow = models.CharField(max_length=100, db_index=True)
    # The version of the workflow the run started on; only code registering it may advance it.
    workflow_version = models.PositiveIntegerField(default=1)
    args = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # Lease: the one executor allowed to advance the run, until the expiry.
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When a suspended run must be advanced again (deadline of a wait, end of a sleep, retry).
    wake_at = models.DateTimeField(null=True, blank=True)
    waiting_signal = models.CharField(max_length=100, blank=True, default="")
    # Set when a task for the run was put on the queue; cleared when a worker takes the lease.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the run is (or was last) blocked, and since when; kept after it resumes, for history.
    blocked_kind = models.CharField(
        max_length=20, choices=BlockedKind.choices, blank=True, default=""
    )
    blocked_reason = models.TextField(blank=True, default="")
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["wake_at"],
                name="durable_run_active_wake_idx",
                condition=Q(status__in=["pending", "running", "waiting"]),
            ),
            models.Index(
                fields=["workflow", "workflow_version"],
                name="durable_run_blocked_idx",
                condition=Q(status="blocked"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class CheckpointStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    ERROR = "error", "Error"


class StepCheckpoint(models.Model):
    """The recorded outcome of the command at one position of a run's workflow."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="checkpoints")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20)
    status = models.CharField(
        max_length=10, choices=CheckpointStatus.choices, default=CheckpointStatus.DONE
    )
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    # For waits and sleeps: fixed the first time the command is reached, never moved after.
    deadline = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A plain step with `unknown_for`: how many of its attempts had an unknown outcome (not
    # counted against max_attempts; an attempt is presumed unknown until it answers, so one whose
    # worker died stays so), and since when, by the database's clock: the start of the horizon
    # after which the run is blocked. An operator's resume clears it (a new horizon).
    unknown_attempts = models.PositiveIntegerField(default=0)
    unknown_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="durable_checkpoint_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.position} {self.name} ({self.status})"


class WorkflowSignal(models.Model):
    """A message sent to a run ("cancel"), kept whether or not a worker is running."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="signals")
    name = models.CharField(max_length=100)
    payload = models.JSONField(null=True, blank=True)
    sent_at = models.DateTimeField(auto_now_add=True)
    accepted = models.BooleanField()
    reason = models.CharField(max_length=100, blank=True, default="")
    consumed_position = models.PositiveIntegerField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "name"], name="durable_signal_run_name_idx")]

    def __str__(self) -> str:
        verdict = "accepted" if self.accepted else "rejected"
        return f"{self.name} -> {self.run_id} ({verdict})"


class EngineHeartbeat(models.Model):
    """The last sign of life of one engine process: a poller, or a django-q2 worker.

    django-q2's own cluster status lives in Django's cache with the ORM broker, a per-process
    memory by default, so the engine keeps heartbeats where every machine can see them.
    """

    kind = models.CharField(max_length=20)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)
    # Workers: the workflow versions this process can advance, as "name@version".
    workflows = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "host", "pid"], name="durable_heartbeat_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.host}:{self.pid} at {self.last_seen.isoformat()}"
