from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from practitioners.ingest.csv import COLUMNS, import_practitioners


class Command(BaseCommand):
    help = (
        "Import practitioners from a CSV file (upsert by external_id). Columns: "
        + ", ".join(COLUMNS)
        + ". Nothing is written if any row is bad, unless --skip-bad-rows."
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
        try:
            stream = (
                sys.stdin if path == "-" else Path(path).open(newline="", encoding="utf-8-sig")  # noqa: SIM115
            )
        except OSError as error:
            raise CommandError(f"Cannot open {path}: {error.strerror}") from error
        bar = tqdm(
            desc="Writing", unit=" practitioners", disable=verbosity < 1, file=self.stderr._out
        )
        try:
            with stream:
                report = import_practitioners(
                    stream=stream,
                    dry_run=options["dry_run"],
                    skip_bad_rows=options["skip_bad_rows"],
                    geocode=not options["no_geocode"],
                    progress=bar.update,
                )
        except UnicodeDecodeError as error:
            raise CommandError(f"{path} is not UTF-8 text: {error}") from error
        finally:
            bar.close()
        for error in report.errors[:200]:
            self.stderr.write(f"  {error}")
        if len(report.errors) > 200:
            self.stderr.write(f"  ... and {len(report.errors) - 200} more bad rows")
        if report.errors and not report.written:
            self.stderr.write(self.style.ERROR(report.summary()))
            if not options["skip_bad_rows"]:
                raise CommandError(
                    f"{len(report.errors)} bad row(s); nothing was written. Fix them, or run with "
                    "--skip-bad-rows to import the good rows."
                )
        elif verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(report.summary()))
        if report.geocoding is not None and verbosity >= 1:
            self.stdout.write(f"Geocoding: {report.geocoding.line()}")
        queued = report.written and not options["no_geocode"] and report.pending_geocode_ids
        if report.geocoding is None and queued and verbosity >= 1:
            self.stdout.write(
                f"Geocoding {len(report.pending_geocode_ids)} new clinic(s) in the background "
                "(they are at their ZIP centroid until then)."
            )
