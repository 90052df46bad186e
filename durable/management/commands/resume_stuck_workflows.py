import datetime as dt

from django.core.management.base import BaseCommand

from durable.ops import recovery


class Command(BaseCommand):
    help = "List and re-enqueue workflow runs that are not finished and not progressing."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list only, change nothing")
        parser.add_argument("--run-id", default=None, help="only this run")
        parser.add_argument(
            "--older-than", type=float, default=0.0, metavar="SECONDS",
            help="only runs stuck for at least this many seconds",
        )  # fmt: skip
        parser.add_argument(
            "--inline", action="store_true", help="advance in this process (no cluster needed)"
        )

    def handle(self, *args, **options):
        stuck = recovery.find_stuck(dt.timedelta(seconds=options["older_than"]), options["run_id"])
        for run in stuck:
            self.stdout.write(f"{run.run_id}\t{run.workflow}\t{run.status}\t{run.why}")
        if options["dry_run"] or not stuck:
            self.stdout.write(f"{len(stuck)} stuck run(s)" + (" (dry run)" if stuck else ""))
            return
        outcome = recovery.resume([run.run_id for run in stuck], inline=options["inline"])
        for run_id, what in outcome.items():
            self.stdout.write(f"{run_id}\t{what}")
        self.stdout.write(f"resumed {len(outcome)} run(s)")
