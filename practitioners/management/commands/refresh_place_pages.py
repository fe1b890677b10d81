from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser

from practitioners import locks, place_pages, tasks


class Command(BaseCommand):
    help = (
        "Scheduled job (hourly), and after a bulk change made outside the admin and the "
        "importers: work out again which place pages (/<state>/<city>/ and "
        "/<state>/<city>/<technique>/) have a published practitioner, for sitemap.xml. "
        "Idempotent; a second run started while one is going does nothing and says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say how the list would change; store nothing.",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        dry_run = options["dry_run"]
        with locks.try_exclusive(tasks.PLACE_PAGES_LOCK) as held:
            if not held:
                if verbosity >= 1:
                    self.stdout.write(
                        "Another refresh of the place pages is running; nothing done."
                    )
                return
            if verbosity >= 2:
                self.stdout.write("Grouping the published clinics by city ...")
            started = time.perf_counter()
            summary = place_pages.refresh(dry_run=dry_run)
            seconds = time.perf_counter() - started
        if verbosity >= 1:
            self.stdout.write(
                f"{'Would store' if dry_run else 'Stored'} {summary.places:,} place pages and "
                f"{summary.place_techniques:,} place-by-technique pages "
                f"({summary.added:,} new, {summary.removed:,} gone) in {seconds:.1f} s."
            )
