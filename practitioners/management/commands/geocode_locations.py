from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from practitioners import locks, tasks
from practitioners.geocoding import current_provider, geocode_locations
from practitioners.management.progress import progress_bar
from practitioners.models import Location


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "Geocode clinic addresses with the configured GEOCODER, at most one request per "
        "GEOCODER_MIN_DELAY_SECONDS. By default the pending and failed locations; --all looks at "
        "every location but only geocodes the ones that need it (new or changed address, or only "
        "a ZIP centroid from the offline geocoder). Answers are cached, so stopping and running "
        "it again continues where it was."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pending", action="store_true", help="Locations never geocoded yet.")
        parser.add_argument(
            "--failed", action="store_true", help="Locations whose last attempt failed."
        )
        parser.add_argument(
            "--all", action="store_true", help="Every location (unchanged ones are skipped)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Geocode again even if the address is unchanged, bypassing the cache "
            "(positions set by hand are still kept).",
        )
        parser.add_argument(
            "--limit", type=positive_int, metavar="N", help="Geocode at most N locations."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would be geocoded; send no request and write nothing.",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        queryset = Location.objects.all()
        if not options["all"]:
            statuses = []
            if options["pending"]:
                statuses.append(Location.GeocodeStatus.PENDING)
            if options["failed"]:
                statuses.append(Location.GeocodeStatus.FAILED)
            statuses = statuses or [Location.GeocodeStatus.PENDING, Location.GeocodeStatus.FAILED]
            queryset = queryset.filter(geocode_status__in=statuses)
        total = queryset.count()
        if options["limit"] is not None and not options["all"]:
            total = min(total, options["limit"])
        bar = progress_bar(
            self,
            verbosity=verbosity,
            total=total,
            desc=f"Geocoding ({current_provider()})",
            unit=" locations",
        )
        try:
            # One geocoding client at a time across every process (tasks, the scheduled retry),
            # so the provider's rate limit holds.
            with locks.try_exclusive(tasks.GEOCODING_LOCK) as held:
                if not held:
                    bar.close()
                    raise CommandError(
                        "Another geocoding run (a task or `retry_geocodes`) is going; nothing "
                        "done. Run this again when it has finished."
                    )
                summary = geocode_locations(
                    queryset=queryset,
                    force=options["force"],
                    limit=options["limit"],
                    dry_run=options["dry_run"],
                    progress=bar.update,
                )
        except KeyboardInterrupt:
            bar.close()
            raise CommandError(
                "Interrupted. What was geocoded is saved; run the same command again to continue."
            ) from None
        bar.close()
        if verbosity >= 1:
            style = self.style.WARNING if summary.failed or summary.stopped else self.style.SUCCESS
            self.stdout.write(style(summary.line()))
