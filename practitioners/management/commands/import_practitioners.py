from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from practitioners.ingest.csv import COLUMNS, ImportProgress, import_practitioners
from practitioners.management.progress import progress_bar

LISTED_ERRORS = 200


class Command(BaseCommand):
    help = (
        "Import practitioners from a CSV file (upsert by external_id). Columns: "
        + ", ".join(COLUMNS)
        + ". The file is read as a stream in one transaction: nothing is written if any row is "
        "bad, unless --skip-bad-rows. Changes to existing listings are recorded in their "
        'history as "CSV import <file name>".'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file with a header row, or - for standard input")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and count; write nothing."
        )
        parser.add_argument(
            "--skip-bad-rows", action="store_true", help="Write the good rows even if some are bad."
        )
        parser.add_argument(
            "--no-geocode",
            action="store_true",
            help="Leave new clinics without coordinates at their ZIP centroid, pending for "
            "`manage.py geocode_locations`, instead of geocoding them now (a public geocoder "
            "allows about one address a second).",
        )

    def handle(self, *args, **options) -> None:
        path = options["file"]
        verbosity = options["verbosity"]
        bar = progress_bar(self, verbosity=verbosity, desc="Importing", unit="B", unit_scale=True)
        started = time.monotonic()

        def progress(done: ImportProgress) -> None:
            if done.bytes_total is not None:
                bar.total = done.bytes_total
                bar.update((done.bytes_read or 0) - bar.n)
            rate = done.rows_read / max(time.monotonic() - started, 1e-9)
            bar.set_postfix_str(f"{done.rows_read:,} rows, {rate:,.0f}/s, {done.errors:,} bad")

        common = {
            "dry_run": options["dry_run"],
            "skip_bad_rows": options["skip_bad_rows"],
            "geocode": not options["no_geocode"],
            "progress": progress,
        }
        try:
            if path == "-":
                report = import_practitioners(
                    stream=sys.stdin, file_name="(standard input)", **common
                )
            else:
                report = import_practitioners(path=path, **common)
        except OSError as error:
            raise CommandError(f"Cannot open {path}: {error.strerror}") from error
        finally:
            bar.close()
        for error in report.errors[:LISTED_ERRORS]:
            self.stderr.write(f"  {error}")
        if report.error_count > LISTED_ERRORS:
            self.stderr.write(f"  ... and {report.error_count - LISTED_ERRORS} more bad rows")
        if report.error_count and not report.written:
            self.stderr.write(self.style.ERROR(report.summary()))
            if not options["skip_bad_rows"] or report.file_error:
                if report.file_error:
                    raise CommandError(f"{path}: {report.file_error}")
                raise CommandError(
                    f"{report.error_count} bad row(s); nothing was written. Fix them, or run "
                    "with --skip-bad-rows to import the good rows."
                )
        elif report.rows == 0 and not report.error_count:
            raise CommandError(
                f"{path}: line 1: the file has a header row but no data rows; there is nothing "
                "to import."
            )
        elif verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(report.summary()))
            self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
        if report.geocoding is not None and verbosity >= 1:
            self.stdout.write(f"Geocoding: {report.geocoding.line()}")
        queued = report.written and not options["no_geocode"] and report.pending_geocode_count
        if report.geocoding is None and queued and verbosity >= 1:
            self.stdout.write(
                f"Geocoding {report.pending_geocode_count} new clinic(s) in the background "
                "(they are at their ZIP centroid until then)."
            )
