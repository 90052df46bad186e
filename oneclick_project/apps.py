"""The project's app configurations."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.contrib.admin.apps import AdminConfig


class OneclickAdminConfig(AdminConfig):
    """django.contrib.admin with oneclick_project.admin_site.OneclickAdminSite as `admin.site`
    (its sign-in behind the lockout of every sign-in)."""

    default_site = "oneclick_project.admin_site.OneclickAdminSite"


class ProjectConfig(AppConfig):
    """Locks django-q2 down: its admin pages are not offered (tasks and schedules name Python
    functions to call: staff see the engine's runs in the engine's admin instead), and only the
    engine's functions may be enqueued (oneclick_project.task_allowlist). Also home of the
    `engine_schedules` command."""

    name = "oneclick_project"
    verbose_name = "oneclick"

    def ready(self) -> None:
        from django.contrib import admin
        from django_q.signals import pre_enqueue

        from oneclick_project.task_allowlist import refuse_unknown_tasks

        pre_enqueue.connect(refuse_unknown_tasks, dispatch_uid="oneclick.refuse_unknown_tasks")
        # Runs after the admin's own ready() (INSTALLED_APPS order), which registered them.
        for model in apps.get_app_config("django_q").get_models():
            if admin.site.is_registered(model):
                admin.site.unregister(model)
