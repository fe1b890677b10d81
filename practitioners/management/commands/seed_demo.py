from django.core.management.base import BaseCommand, CommandError

from practitioners.ingest.demo import seed_demo


class Command(BaseCommand):
    help = "Load a few hundred fictional practitioners at real ZIP centroids (idempotent)."

    def handle(self, *args, **options) -> None:
        report = seed_demo()
        if report.errors:
            raise CommandError("; ".join(str(e) for e in report.errors[:5]))
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS(f"Demo data: {report.summary()}"))
