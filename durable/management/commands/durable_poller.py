from django.core.management.base import BaseCommand

from durable.ops.health import PollerHeartbeat
from durable.transport.poller import run_forever


class Command(BaseCommand):
    help = (
        "Enqueue workflow runs whose wake-up time has come or whose worker died; every "
        "DURABLE_HEARTBEAT_SECONDS, record this poller's heartbeat, probe the workers and resume "
        "the runs blocked for a workflow version a live worker now has."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")

    def handle(self, *args, **options):
        run_forever(PollerHeartbeat().tick, max_seconds=options["max_seconds"])
