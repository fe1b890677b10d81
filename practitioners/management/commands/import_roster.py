from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from practitioners.ingest.roster import REQUIRED_HELP, RosterError, import_roster
from practitioners.management.progress import progress_bar
from practitioners.models import Certification

LISTED = 50


class Command(BaseCommand):
    help = (
        "Reconcile a certifying body's roster (CSV) with the listings: an NPI on the row, or a "
        "confident match on name, place, phone and e-mail, records the certificate verified on "
        "the roster's date; doubtful rows go to the staff review queue (admin: Roster reviews); "
        "listings an earlier roster of the body confirmed and this one omits are flagged, never "
        f"deleted. The file needs {REQUIRED_HELP}. Re-running the same file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The roster, a CSV file with a header row.")
        parser.add_argument(
            "--technique",
            required=True,
            help="The slug of the technique the roster certifies (e.g. graston); the rows' "
            "level column is matched against its levels (M2, Spine...).",
        )
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            help="The roster's date, YYYY-MM-DD (default today): the verification date.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Match and count; write nothing."
        )
        parser.add_argument(
            "--create-unmatched",
            action="store_true",
            help="Create each unmatched row as a pending listing for staff to review.",
        )

    def handle(self, *args, **options) -> None:
        try:
            technique = Certification.objects.get(slug=options["technique"])
        except Certification.DoesNotExist:
            known = ", ".join(
                Certification.objects.filter(parent=None).values_list("slug", flat=True)
            )
            raise CommandError(f"No technique {options['technique']!r}; known: {known}.") from None
        verbosity = options["verbosity"]
        bar = progress_bar(self, verbosity=verbosity, desc="Recording", unit=" rows")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            summary = import_roster(
                path=options["file"],
                technique=technique,
                as_of=options["as_of"],
                dry_run=options["dry_run"],
                create_unmatched=options["create_unmatched"],
                progress=progress,
            )
        except FileNotFoundError:
            raise CommandError(f"No such file: {options['file']}") from None
        except RosterError as error:
            shown = error.messages[:LISTED]
            more = len(error.messages) - len(shown)
            raise CommandError(
                "The roster was not imported:\n"
                + "\n".join(shown)
                + (f"\n... and {more} more." if more else "")
            ) from None
        finally:
            bar.close()
        if verbosity >= 2:
            for row in summary.unmatched_rows:
                where = ", ".join(p for p in (row.city, row.state, row.postal_code) if p)
                self.stdout.write(f"unmatched: line {row.line}: {row.name} ({where})")
        prefix = "Dry run, nothing written: " if options["dry_run"] else ""
        self.stdout.write(self.style.SUCCESS(prefix + summary.line()))
