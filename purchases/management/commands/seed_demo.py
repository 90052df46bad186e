from django.core.management.base import BaseCommand

from purchases.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo catalog and the demo user demo/demo (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="create the demo user even with DEBUG off"
        )

    def handle(self, *args, **options):
        report = seed_demo(force=options["force"])
        for line in report:
            self.stdout.write(line)
