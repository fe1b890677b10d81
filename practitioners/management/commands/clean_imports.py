from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from practitioners import imports, locks
from practitioners.models import ImportJob

# Where previews were kept before uploads moved to IMPORT_UPLOAD_DIR: cleared too.
LEGACY_DIR = Path(tempfile.gettempdir()) / "practitioner-imports"


class Command(BaseCommand):
    help = (
        "Scheduled job (hourly): delete the admin's CSV import jobs (previews, reports) and "
        "their stored uploads once older than IMPORT_EXPIRY_HOURS, and any stray file in "
        "IMPORT_UPLOAD_DIR as old. A job a worker is still on is kept. Idempotent; a second run "
        "started while one is going does nothing and says so."
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
            jobs = self._clean_jobs(dry_run=dry_run, verbosity=verbosity)
            removed, size = self._clean_files(dry_run=dry_run, verbosity=verbosity)
        if verbosity >= 1:
            verb = "would be deleted" if dry_run else "deleted"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{jobs} expired import job(s) and {removed} expired upload(s) "
                    f"({size / 1e6:.1f} MB) {verb}; kept for {settings.IMPORT_EXPIRY_HOURS} h."
                )
            )

    def _clean_jobs(self, *, dry_run: bool, verbosity: int) -> int:
        """Expired jobs and their files, a hundred at a time; rows another run (or a task) has
        locked are skipped, and left for the next run."""
        deleted = 0
        seen: set[int] = set()
        while True:
            with transaction.atomic():
                batch = list(
                    imports.expired_jobs()
                    .exclude(pk__in=seen)
                    .select_for_update(skip_locked=True)
                    .order_by("pk")[:100]
                )
                if not batch:
                    return deleted
                for job in batch:
                    seen.add(job.pk)
                    if verbosity >= 2:
                        self.stdout.write(f"  job {job.pk}: {job.file_name} ({job.state})")
                    if not dry_run:
                        imports.upload_path(job).unlink(missing_ok=True)
                        imports.progress_path(job).unlink(missing_ok=True)
                if not dry_run:
                    ImportJob.objects.filter(pk__in=[job.pk for job in batch]).delete()
                deleted += len(batch)

    def _clean_files(self, *, dry_run: bool, verbosity: int) -> tuple[int, int]:
        cutoff = time.time() - dt.timedelta(hours=settings.IMPORT_EXPIRY_HOURS).total_seconds()
        removed = size = 0
        # A file whose job is still kept goes with its job (a running import may be reading it).
        kept = set(ImportJob.objects.values_list("stored_name", flat=True))
        for folder in (Path(settings.IMPORT_UPLOAD_DIR), LEGACY_DIR):
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.csv")):
                try:
                    stat = path.stat()
                except FileNotFoundError:  # the other run, or the import, took it meanwhile
                    continue
                if stat.st_mtime >= cutoff or path.name in kept:
                    continue
                if verbosity >= 2:
                    self.stdout.write(f"  {path}")
                if not dry_run:
                    path.unlink(missing_ok=True)
                removed += 1
                size += stat.st_size
        return removed, size
