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
        from django_q.signals import post_spawn, pre_execute

        from durable.blocking import on_worker_start
        from durable.queue import before_engine_task

        pre_execute.connect(before_engine_task, dispatch_uid="durable.before_engine_task")
        post_spawn.connect(on_worker_start, dispatch_uid="durable.on_worker_start")
