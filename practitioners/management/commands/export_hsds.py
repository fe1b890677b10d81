from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.utils import timezone

from practitioners.feeds import hsds_export
from practitioners.management.progress import progress_bar
from practitioners.models import Practitioner

EXPORT_SQLITE_CACHE_KB = 32 * 1024


class Command(BaseCommand):
    help = (
        "Write every published listing in Open Referral HSDS 3.0's tabular form into DIR: one "
        "CSV per table (organizations, services, attributes, service_at_locations, locations, "
        "phones, addresses, schedules, accessibility, languages, taxonomy_terms, taxonomies) and "
        "datapackage.json describing them. "
        "Streams a batch of listings at a time (--batch, five statements each): memory stays "
        "flat at any size (docs/hsds.md); a progress bar counts the listings at -v 1 and above."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, help="Where the files go (created if needed).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and count everything; write nothing."
        )
        parser.add_argument(
            "--batch", type=int, default=5000, help="Listings read per batch (default 5000)."
        )

    def handle(self, *args, **options) -> None:
        verbosity, dry_run = options["verbosity"], options["dry_run"]
        directory: Path = options["directory"]
        total = Practitioner.objects.published().count()
        if connection.vendor == "sqlite":
            # The export reads each page about once: SQLite's page cache (256 MB in the
            # settings, for imports) would only grow the process, not speed it up.
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size=-{EXPORT_SQLITE_CACHE_KB}")
        with progress_bar(self, verbosity=verbosity, total=total, unit=" listings") as bar:
            counts = hsds_export.export(
                directory,
                on=timezone.localdate(),
                dry_run=dry_run,
                batch=max(1, options["batch"]),
                progress=bar.update,
            )
        if verbosity >= 2:
            for table, rows in counts.items():
                self.stdout.write(f"  {hsds_export.file_name(table)}: {rows} rows")
        if verbosity >= 1:
            verb = "would be written" if dry_run else f"written to {directory}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{counts['organization']} organizations, {counts['service']} services and "
                    f"{counts['location']} locations {verb} (HSDS 3.0, CSV + datapackage.json)."
                )
            )
