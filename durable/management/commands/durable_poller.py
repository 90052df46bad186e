from django.core.management.base import BaseCommand

from durable.transport.poller import run_forever


class Command(BaseCommand):
    help = "Enqueue workflow runs whose wake-up time has come or whose worker died."

    def add_arguments(self, parser):
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")

    def handle(self, *args, **options):
        run_forever(max_seconds=options["max_seconds"])
