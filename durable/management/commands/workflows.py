from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable import engine, inspect
from durable.errors import RunNotFound


class Command(BaseCommand):
    help = "List workflow runs, show one run's step timeline and workflow signals, or cancel a run."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="newest runs first")
        listing.add_argument(
            "--status", action="append", default=[], choices=inspect.STATUS_CHOICES
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

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "list":
                runs = inspect.list_runs(
                    options["status"], options["workflow"], options["limit"],
                    overdue=options["overdue"],
                )  # fmt: skip
                output = inspect.format_run_list(runs, engine.database_now())
            elif options["action"] == "show":
                output = inspect.format_run_detail(inspect.run_detail(options["run_id"]))
            else:
                output = inspect.cancel_run(options["run_id"], options["reason"])
        except (RunNotFound, inspect.AlreadyFinished) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(output)
