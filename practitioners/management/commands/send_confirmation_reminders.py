from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from practitioners.curation import reminders


class Command(BaseCommand):
    help = (
        "Scheduled job (daily): e-mail every owner whose listing was last confirmed 90 days ago "
        "(OWNER_CONFIRMATION_DAYS) a signed link that confirms it without signing in (it works "
        "once, for CONFIRMATION_LINK_DAYS) and a link to edit it. Idempotent: an owner is never "
        "e-mailed twice for the same due date, however often it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the owners who would be reminded; send nothing and write nothing.",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        dry_run = options["dry_run"]
        due = reminders.due_reminders()
        if verbosity >= 2 or (dry_run and verbosity >= 1):
            for practitioner, due_on in due:
                self.stdout.write(
                    f"  {practitioner} ({practitioner.claimed_by.email or 'no e-mail'}), "
                    f"due {due_on:%Y-%m-%d}"
                )
        bar = tqdm(
            total=len(due),
            desc="Sending confirmation reminders",
            unit=" owners",
            disable=verbosity < 1 or dry_run,
            file=self.stderr._out,
        )
        try:
            run = reminders.send_reminders(dry_run=dry_run, progress=bar.update)
        finally:
            bar.close()
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(run.line(dry_run=dry_run)))
