"""`manage.py engine_schedules`: the engine's django-q2 schedules, from a fixed list."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_q.models import Schedule

from oneclick_project.task_allowlist import allowed_task_paths, retention_task_path


def engine_schedules() -> dict[str, dict[str, Any]]:
    """The engine's schedules by name: what each runs and how often. Nothing else is created."""
    return {
        "durable retention": {"func": retention_task_path(), "schedule_type": Schedule.DAILY},
    }


class Command(BaseCommand):
    help = (
        "Create or update the engine's django-q2 schedules (retention, daily), or remove them "
        "with --remove. Functions come from the engine's own list, never from input; schedules "
        "naming any other function are reported (their tasks are refused)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--remove", action="store_true", help="delete the engine's schedules")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = engine_schedules()
        for name, fields in wanted.items():
            if options["remove"]:
                deleted, _ = Schedule.objects.filter(name=name).delete()
                self.stdout.write(f"{name}: {'removed' if deleted else 'not there'}")
                continue
            _, created = Schedule.objects.update_or_create(name=name, defaults=fields)
            verb = "created" if created else "updated"
            self.stdout.write(f"{name}: {verb} ({fields['func']}, {fields['schedule_type']})")
        allowed = allowed_task_paths()
        for other in Schedule.objects.exclude(func__in=allowed).order_by("pk"):
            self.stderr.write(
                f"schedule {other.name or other.pk!r} names {other.func!r}, not one of the "
                "engine's tasks: its tasks are refused (delete it)"
            )
