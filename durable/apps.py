"""The Django app: at start, registers the configured workflows and hooks the engine into
django-q2's worker signals."""

from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class DurableConfig(AppConfig):
    name = "durable"
    verbose_name = "Durable workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workflows must be registered in every process that may replay them (web and workers).
        for module in getattr(settings, "DURABLE", {}).get("WORKFLOW_MODULES", []):
            import_module(module)
        from durable.ops.worker_heartbeat import on_worker_spawn
        from durable.tasks import before_engine_task
        from durable.transport import taskqueue

        taskqueue.connect_signals(before_engine_task, on_worker_spawn)
