from __future__ import annotations

import contextlib
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from practitioners.ingest.nppes import NppesFormatError, import_nppes
from practitioners.management.progress import progress_bar
from practitioners.models import Practitioner


class Command(BaseCommand):
    help = (
        "Import individual practitioners in our professions from the NPI registry's monthly file "
        "(NPPES npidata_pfile_*.csv), and optionally their secondary practice locations "
        "(pl_pfile_*.csv). Safe to re-run every month: only records with a newer Last Update "
        "Date change, staff corrections are kept, and a deactivated NPI suspends its listing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The NPPES main file (npidata_pfile_*.csv)")
        parser.add_argument(
            "--locations", metavar="PL_FILE", help="The practice location file (pl_pfile_*.csv)"
        )
        parser.add_argument(
            "--states",
            help="Only practice locations in these states, comma-separated (e.g. TN,MS,AR)",
        )
        parser.add_argument(
            "--status",
            default=Practitioner.Status.PUBLISHED,
            choices=Practitioner.Status.values,
            help="Status of new listings (default: published). Existing listings keep theirs.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and count everything; write nothing."
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        states = options["states"].split(",") if options["states"] else None
        with contextlib.ExitStack() as stack:
            stream = self._open(stack, options["file"])
            locations = self._open(stack, options["locations"]) if options["locations"] else None
            size = Path(options["file"]).stat().st_size
            bar = stack.enter_context(
                progress_bar(
                    self,
                    verbosity=verbosity,
                    total=size,
                    unit="B",
                    unit_scale=True,
                    desc="Scanning",
                )
            )
            started = time.monotonic()

            def progress(position: int, scanned: int, matched: int) -> None:
                rate = scanned / max(time.monotonic() - started, 1e-9)
                bar.update(position - bar.n)
                bar.set_postfix_str(f"{scanned:,} rows, {rate:,.0f} rows/s, {matched:,} matches")

            try:
                report = import_nppes(
                    stream=stream,
                    locations_stream=locations,
                    states=states,
                    status=options["status"],
                    dry_run=options["dry_run"],
                    progress=progress,
                )
            except NppesFormatError as error:
                raise CommandError(str(error)) from error
        if verbosity >= 1:
            elapsed = time.monotonic() - started
            for line in report.summary_lines():
                self.stdout.write(line)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Done in {elapsed:.0f}s ({report.scanned / max(elapsed, 1e-9):,.0f} rows/s)."
                )
            )
            if report.written and report.locations_created:
                self.stdout.write("Run `manage.py geocode_locations` to place the new locations.")

    def _open(self, stack: contextlib.ExitStack, path: str):
        try:
            return stack.enter_context(Path(path).open("rb", buffering=1 << 20))
        except OSError as error:
            raise CommandError(f"Cannot open {path}: {error.strerror}") from error
