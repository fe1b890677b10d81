from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from practitioners import locks

# Where previews were kept before uploads moved to IMPORT_UPLOAD_DIR: cleared too.
LEGACY_DIR = Path(tempfile.gettempdir()) / "practitioner-imports"


class Command(BaseCommand):
    help = (
        "Scheduled job (hourly): delete CSV import uploads and previews older than "
        "IMPORT_EXPIRY_HOURS from IMPORT_UPLOAD_DIR. Idempotent; a second run started while one "
        "is going does nothing and says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be deleted; delete nothing."
        )

    def handle(self, *args, **options) -> None:
        verbosity, dry_run = options["verbosity"], options["dry_run"]
        with locks.try_exclusive("clean-imports") as held:
            if not held:
                if verbosity >= 1:
                    self.stdout.write("Another clean-up is running; nothing done.")
                return
            removed, size = self._clean_files(dry_run=dry_run, verbosity=verbosity)
        if verbosity >= 1:
            verb = "would be deleted" if dry_run else "deleted"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{removed} expired upload(s) ({size / 1e6:.1f} MB) {verb}; kept for "
                    f"{settings.IMPORT_EXPIRY_HOURS} h."
                )
            )

    def _clean_files(self, *, dry_run: bool, verbosity: int) -> tuple[int, int]:
        cutoff = time.time() - dt.timedelta(hours=settings.IMPORT_EXPIRY_HOURS).total_seconds()
        removed = size = 0
        for folder in (Path(settings.IMPORT_UPLOAD_DIR), LEGACY_DIR):
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.csv")):
                try:
                    stat = path.stat()
                except FileNotFoundError:  # the other run, or the import, took it meanwhile
                    continue
                if stat.st_mtime >= cutoff:
                    continue
                if verbosity >= 2:
                    self.stdout.write(f"  {path}")
                if not dry_run:
                    path.unlink(missing_ok=True)
                removed += 1
                size += stat.st_size
        return removed, size
