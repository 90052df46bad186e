import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from durable import engine, testing
from durable.errors import RunNotFound
from durable.ops import replaycheck, run_reports
from durable.transport import dispatch


class Command(BaseCommand):
    help = (
        "List workflow runs, show one run's step timeline and workflow signals, cancel or resume "
        "a run, replay stored histories against the code on disk, or export one as a test fixture."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="newest runs first")
        listing.add_argument(
            "--status", action="append", default=[], choices=run_reports.STATUS_CHOICES
        )
        listing.add_argument("--workflow", default=None, help="only runs of this workflow")
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument(
            "--overdue", action="store_true", help="only runs past their wake-up time (margin "
            "DURABLE_OVERDUE_SECONDS)",
        )  # fmt: skip
        actions.add_parser("show", help="one run in detail").add_argument("run_id")
        cancel = actions.add_parser("cancel", help="stop an active run where it is")
        cancel.add_argument("run_id")
        cancel.add_argument("--reason", default="cancelled by an operator (manage.py workflows)")
        resume = actions.add_parser(
            "resume", help="make a run go on now: a blocked one is replayed again, a step whose "
            "outcome stayed unknown is tried again (same key, new horizon)",
        )  # fmt: skip
        resume.add_argument("run_id")
        resume.add_argument(
            "--inline", action="store_true", help="advance it in this process (no cluster needed)"
        )
        check = actions.add_parser(
            "replay-check", help="replay recent runs' histories on this code; exit 1 if any diverge"
        )
        check.add_argument("--since", default=None, help="30m, 24h, 7d or an ISO date-time")
        check.add_argument("--limit", type=int, default=500)
        check.add_argument("--workflow", default=None, help="only runs of this workflow")
        actions.add_parser("export", help="one run's history as JSON").add_argument("run_id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "list":
                runs = run_reports.list_runs(
                    options["status"], options["workflow"], options["limit"],
                    overdue=options["overdue"],
                )  # fmt: skip
                now = engine.database_now()
                output = (
                    run_reports.format_run_list(runs, now)
                    + "\n"
                    + run_reports.format_backlog(
                        dispatch.queue_depth(), run_reports.calls_in_flight(now)
                    )
                )
            elif options["action"] == "show":
                output = run_reports.format_run_detail(run_reports.run_detail(options["run_id"]))
            elif options["action"] == "replay-check":
                output = self._replay_check(options)
            elif options["action"] == "resume":
                output = run_reports.resume_run(options["run_id"], inline=options["inline"])
            elif options["action"] == "export":
                output = json.dumps(testing.export_history(options["run_id"]), indent=2)
            else:
                output = run_reports.cancel_run(options["run_id"], options["reason"])
        except (RunNotFound, run_reports.AlreadyFinished) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(output)

    def _replay_check(self, options: dict[str, Any]) -> str:
        try:
            since = options["since"] and replaycheck.parse_since(options["since"], timezone.now())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        checked = replaycheck.check_runs(since or None, options["limit"], options["workflow"])
        diverging = [run for run in checked if run.problem]
        for run in diverging:
            self.stdout.write(
                f"{run.run_id}\t{run.workflow} v{run.version}\t{run.status}\t{run.problem}"
            )
        summary = f"{len(checked)} run(s) replayed, {len(diverging)} would be blocked"
        if diverging:
            raise CommandError(summary, returncode=1)
        return summary
