import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable.ops.retention import prune


class Command(BaseCommand):
    help = (
        "Delete the step checkpoints and workflow signals of runs finished more than DAYS ago "
        "(default: DURABLE['RETENTION_DAYS']), and their rows where no other model protects them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, default=None, metavar="DAYS")
        parser.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        if days is not None and days < 0:
            raise CommandError("--older-than must not be negative")
        older_than = None if days is None else dt.timedelta(days=days)
        report = prune(older_than, dry_run=options["dry_run"])
        verb = "would delete" if report.dry_run else "deleted"
        self.stdout.write(
            f"runs finished before {report.cutoff.isoformat()}: {report.runs_examined}; "
            f"{verb} {report.checkpoints} checkpoint(s), {report.signals} workflow signal(s), "
            f"{report.runs_deleted} run(s), {report.heartbeats} stale heartbeat(s); "
            f"kept {report.runs_kept} protected run row(s)"
        )
