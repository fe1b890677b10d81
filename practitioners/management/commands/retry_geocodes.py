from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from practitioners import locks, tasks
from practitioners.geocoding import current_provider, geocode_locations
from practitioners.management.commands.geocode_locations import positive_int
from practitioners.management.progress import progress_bar
from practitioners.models import Location


class Command(BaseCommand):
    help = (
        "Scheduled job (hourly): geocode the clinics whose last geocode failed (the provider was "
        "down) and the ones left pending for longer than --older-than minutes (their task was "
        "lost), oldest attempt first, at the configured rate limit. Idempotent; a second run "
        "started while one is going (or while a geocoding task runs) does nothing and says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=positive_int,
            default=15,
            metavar="MINUTES",
            help="A pending clinic counts as lost after this many minutes (default 15).",
        )
        parser.add_argument(
            "--limit", type=positive_int, metavar="N", help="Geocode at most N clinics."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would be geocoded; send no request and write nothing.",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        lost_before = timezone.now() - dt.timedelta(minutes=options["older_than"])
        queryset = Location.objects.filter(
            Q(geocode_status=Location.GeocodeStatus.FAILED)
            | Q(geocode_status=Location.GeocodeStatus.PENDING, updated_at__lt=lost_before)
        )
        with locks.try_exclusive(tasks.GEOCODING_LOCK) as held:
            if not held:
                if verbosity >= 1:
                    self.stdout.write(
                        "Another geocoding run holds the provider; nothing done. The clinics stay "
                        "queued for it or for the next run."
                    )
                return
            total = queryset.count()
            if options["limit"] is not None:
                total = min(total, options["limit"])
            bar = progress_bar(
                self,
                verbosity=verbosity,
                total=total,
                desc=f"Retrying geocodes ({current_provider()})",
                unit=" clinics",
            )
            try:
                summary = geocode_locations(
                    queryset=queryset,
                    limit=options["limit"],
                    dry_run=options["dry_run"],
                    progress=bar.update,
                )
            except KeyboardInterrupt:
                raise CommandError(
                    "Interrupted. What was geocoded is saved; the next run continues."
                ) from None
            finally:
                bar.close()
        if verbosity >= 1:
            style = self.style.WARNING if summary.failed or summary.stopped else self.style.SUCCESS
            self.stdout.write(style(summary.line()))
