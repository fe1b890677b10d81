"""The admin's CSV import as a job: the upload is stored, the preview (a dry run) and the import
each run as a task, and the :class:`~practitioners.models.ImportJob` row holds what the admin
page shows while they run (rows read of the total, bad rows so far) and the reports after.

The rules are those of ``manage.py import_practitioners``: both call
:func:`practitioners.ingest.csv.import_practitioners`. What this module adds is the life of a
job: upload -> preview task -> one clear verdict -> confirm (all-or-nothing, or skipping the bad
rows, from the stored file: nothing to upload again) -> import task -> report; and expiry
(``IMPORT_EXPIRY_HOURS``), after which ``manage.py clean_imports`` removes the file and the job.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from .ingest.csv import ImportProgress, import_practitioners
from .models import ImportJob

logger = logging.getLogger(__name__)

# How many bad rows a job keeps to show (the count is always exact).
LISTED_ERRORS = 500
# Progress is written to the job row at most this often (each write is one UPDATE).
PROGRESS_INTERVAL_SECONDS = 0.5


class UploadRefused(Exception):
    """The upload cannot become a job (too big); the message says why, for the person."""


def max_upload_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024


def upload_path(job: ImportJob) -> Path:
    return Path(settings.IMPORT_UPLOAD_DIR) / job.stored_name


def too_big_message(size: int) -> str:
    return (
        f"The file is {size / 1024 / 1024:,.1f} MB; the largest import is "
        f"{settings.IMPORT_MAX_UPLOAD_MB:,} MB (IMPORT_MAX_UPLOAD_MB). Split it into smaller files "
        "(each with the header row) and import them one after the other."
    )


def count_lines(path: Path) -> int:
    """Data rows in the file, counted as lines after the header (fast: bytes, no parsing). A
    quoted field with a line break inside makes this an over-estimate; the preview's own count
    replaces it when the preview is done."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without a line break
    return max(lines - 1, 0)


# --- starting and confirming (the admin's requests: quick, no parsing) --------------------------


def start_job(
    *,
    upload: UploadedFile,
    user: AbstractBaseUser | None,
    skip_bad_rows: bool = False,
    kind: str = ImportJob.Kind.PRACTITIONERS,
    options: dict | None = None,
) -> ImportJob:
    """Store the upload and queue its preview. Raises :class:`UploadRefused` when too big.
    ``kind`` says what the file is: listings, or a roster (``options``: ``technique`` slug,
    ``as_of`` ISO date, ``create_unmatched``; see :mod:`practitioners.roster_jobs`)."""
    if upload.size is not None and upload.size > max_upload_bytes():
        raise UploadRefused(too_big_message(upload.size))
    folder = Path(settings.IMPORT_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = f"{secrets.token_hex(16)}.csv"
    size = 0
    with (folder / stored_name).open("wb") as out:
        for chunk in upload.chunks():
            size += len(chunk)
            out.write(chunk)
    # The total the page shows from the start ("0 of 160,000 rows read"); the preview's exact
    # count replaces it.
    rows_total = count_lines(folder / stored_name)
    job = ImportJob.objects.create(
        file_name=Path(upload.name or "upload.csv").name[:255],
        stored_name=stored_name,
        size_bytes=size,
        created_by=user if user is not None and user.is_authenticated else None,
        expires_at=timezone.now() + dt.timedelta(hours=settings.IMPORT_EXPIRY_HOURS),
        state=ImportJob.State.PREVIEWING,
        skip_bad_rows=skip_bad_rows,
        rows_total=rows_total,
        kind=kind,
        options=options or {},
    )
    _enqueue(job, "preview")
    return job


def confirm_job(*, job: ImportJob, skip_bad_rows: bool) -> bool:
    """Start the import of a previewed job from its stored file. False when it cannot start
    (already started, expired, or a verdict that allows no import); the page then says why."""
    verdict = verdict_of(job)
    allowed = verdict.can_import_all or (
        skip_bad_rows and verdict.can_import_good_rows and job.kind == ImportJob.Kind.PRACTITIONERS
    )
    if not allowed or job.expires_at <= timezone.now() or not upload_path(job).exists():
        return False
    with transaction.atomic():
        # One import per job, whatever the number of clicks or tabs.
        started = (
            ImportJob.objects.select_for_update()
            .filter(pk=job.pk, state=ImportJob.State.PREVIEWED)
            .update(
                state=ImportJob.State.IMPORTING,
                skip_bad_rows=skip_bad_rows,
                rows_read=0,
                errors_count=0,
                updated_at=timezone.now(),
            )
        )
    if started:
        job.refresh_from_db()
        _enqueue(job, "import")
    return bool(started)


def _enqueue(job: ImportJob, phase: str) -> None:
    from . import tasks  # tasks imports this module's callers; import late to keep it one-way

    task = tasks.preview_import if phase == "preview" else tasks.run_import
    result = task.enqueue(job.pk)
    ImportJob.objects.filter(pk=job.pk, task_id="").update(task_id=str(result.id)[:64])


# --- the tasks' work --------------------------------------------------------------------------


def progress_path(job: ImportJob) -> Path:
    return upload_path(job).with_name(job.stored_name + ".progress")


def progress_file_writer(job: ImportJob) -> Callable[..., None]:
    """``write(rows_read, errors, rows_total=None)``: a running task's progress, to a small file
    beside the upload, not to the job's row. The preview and the import each run in one
    transaction, so nobody else would see the row change until the end (and a preview rolls it
    back), and on SQLite a second connection cannot write while it runs. At most one write
    every PROGRESS_INTERVAL_SECONDS. Both kinds of job (listings, rosters) use it."""
    last = 0.0
    path = progress_path(job)

    def write(rows_read: int, errors: int, rows_total: int | None = None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_SECONDS:
            last = now
            figures = [rows_read, errors] + ([] if rows_total is None else [rows_total])
            written = path.with_name(path.name + ".tmp")
            written.write_text(" ".join(str(n) for n in figures))
            written.replace(path)  # atomic: a reader sees the old figures or the new

    return write


def _progress_writer(job: ImportJob):
    write = progress_file_writer(job)

    def progress(done: ImportProgress) -> None:
        write(done.rows_read, done.errors)

    return progress


def show_progress(job: ImportJob) -> ImportJob:
    """``job`` with the running task's latest figures, when a task is running."""
    if job.is_running:
        try:
            figures = [int(n) for n in progress_path(job).read_text().split()]
        except (OSError, ValueError):
            return job  # not started yet, or between two writes of the file
        if len(figures) not in (2, 3):
            return job
        job.rows_read, job.errors_count = figures[0], figures[1]
        if len(figures) == 3:
            job.rows_total = figures[2]
    return job


def recent_jobs(kind: str, *, limit: int = 20) -> list[ImportJob]:
    """The upload page's list: jobs of ``kind`` not yet expired, newest first (the model's
    ordering), each with its running task's latest figures."""
    jobs = ImportJob.objects.filter(kind=kind, expires_at__gt=timezone.now())
    return [show_progress(job) for job in jobs.select_related("created_by")[:limit]]


def record_failure(*, job: ImportJob, phase: str, what: str, error: BaseException) -> None:
    """A task stopped on an unexpected error (called while handling it; the caller re-raises it
    for the worker): the page says so, and the details go to the worker's log, where ``what``
    names the kind of job."""
    progress_path(job).unlink(missing_ok=True)
    logger.exception("%s job %s (%s) stopped", what, job.pk, phase)
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.FAILED,
        message=(
            f"The {'preview' if phase == 'preview' else 'import'} stopped on an unexpected "
            f"error ({type(error).__name__}); nothing was written. Staff with server access "
            "find the details in the worker's log."
        ),
    )


def record_result(
    *, job: ImportJob, phase: str, values: dict, rows: int, errors: int, refused: str = ""
) -> None:
    """What a finished task found, on the job's row: the preview's report (the page's verdict
    comes from it), or the import's, after which the stored file has served its purpose.
    ``refused``: why an import wrote nothing (the job then shows as failed)."""
    progress_path(job).unlink(missing_ok=True)
    if phase == "preview":
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.PREVIEWED,
            preview=values,
            rows_total=rows,
            rows_read=rows,
            errors_count=errors,
            updated_at=timezone.now(),
        )
        return
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.FAILED if refused else ImportJob.State.IMPORTED,
        result=values,
        rows_read=rows,
        errors_count=errors,
        message=refused,
        updated_at=timezone.now(),
    )
    # The report stays until the job expires.
    upload_path(job).unlink(missing_ok=True)


def _report_dict(report) -> dict:
    return {
        "rows": report.rows,
        "practitioners_created": report.practitioners_created,
        "practitioners_updated": report.practitioners_updated,
        "practitioners_unchanged": report.practitioners_unchanged,
        "locations_created": report.locations_created,
        "locations_updated": report.locations_updated,
        "certifications_added": report.certifications_added,
        "error_count": report.error_count,
        "errors": [[e.line, e.message] for e in report.errors[:LISTED_ERRORS]],
        "file_error": report.file_error,
        "written": report.written,
        "summary": report.summary(),
        "pending_geocode": report.pending_geocode_count,
    }


def run_phase(*, job_id: int, phase: str) -> dict:
    """The preview (a dry run that counts what importing the good rows would do, and lists the
    bad ones) or the import itself. A job not in the state for this phase is left alone, so a
    task delivered twice does its work once."""
    expected = ImportJob.State.PREVIEWING if phase == "preview" else ImportJob.State.IMPORTING
    job = ImportJob.objects.filter(pk=job_id, state=expected).first()
    if job is None:
        return {"skipped": True}
    path = upload_path(job)
    if not path.exists():
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.FAILED,
            message="The stored upload is gone (expired and cleaned up); upload the file again.",
        )
        return {"missing": True}
    if job.rows_total is None:
        ImportJob.objects.filter(pk=job.pk).update(rows_total=count_lines(path))
    if job.kind == ImportJob.Kind.ROSTER:
        from . import roster_jobs  # the roster's own reading and recording, same life of a job

        return roster_jobs.run_phase(job=job, phase=phase, path=path)
    try:
        report = import_practitioners(
            path=path,
            file_name=job.file_name,
            # The preview always counts the good rows too, so its verdict can say what skipping
            # the bad ones would write; nothing is written on a dry run either way.
            dry_run=phase == "preview",
            skip_bad_rows=True if phase == "preview" else job.skip_bad_rows,
            progress=_progress_writer(job),
        )
    except Exception as error:
        record_failure(job=job, phase=phase, what="CSV import", error=error)
        raise
    record_result(
        job=job,
        phase=phase,
        values=_report_dict(report),
        rows=report.rows,
        errors=report.error_count,
        refused="" if report.written else "Nothing was written: " + report.summary(),
    )
    return {"job": job.pk, "phase": phase, "rows": report.rows, "errors": report.error_count}


# --- what the page says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The one sentence a preview ends with, and which import buttons it offers."""

    text: str
    can_import_all: bool = False
    can_import_good_rows: bool = False
    level: str = "info"  # "info", "warning" or "error", for the page's colour


def verdict_of(job: ImportJob) -> Verdict:
    if job.kind == ImportJob.Kind.ROSTER:
        from . import roster_jobs

        return roster_jobs.verdict_of(job)
    preview = job.preview
    if job.state == ImportJob.State.FAILED and not preview:
        return Verdict(job.message or "The preview stopped; nothing was written.", level="error")
    if not preview:
        return Verdict("Checking the file…")
    rows, bad = preview["rows"], preview["error_count"]
    if preview["file_error"]:
        return Verdict(f"This file cannot be imported: {preview['file_error']}", level="error")
    if rows == 0 and not bad:
        return Verdict(
            "Line 1: the file has a header row but no data rows; there is nothing to import.",
            level="error",
        )
    if bad == 0:
        return Verdict(
            f"{_all_rows(rows)} good. Importing will write: {_changes(preview)}.",
            can_import_all=True,
        )
    good = rows - bad
    if good <= 0:
        return Verdict(
            f"Every row is bad ({bad:,}, listed below). Nothing can be imported: correct the "
            "file and upload it again.",
            level="error",
        )
    return Verdict(
        f"{bad:,} of {rows:,} rows {'is' if bad == 1 else 'are'} bad (listed below), so "
        "importing the file as it is would write nothing. Correct the file and upload it again, "
        f"or import the {_rows(good, 'good')} now and skip the bad: {_changes(preview)}.",
        can_import_good_rows=True,
        level="warning",
    )


def _rows(count: int, kind: str = "") -> str:
    kind = f"{kind} " if kind else ""
    return f"{count:,} {kind}row{'' if count == 1 else 's'}"


def _all_rows(count: int) -> str:
    return "The one row is" if count == 1 else f"All {count:,} rows are"


def _changes(report: dict) -> str:
    return (
        f"{report['practitioners_created']:,} practitioner(s) created, "
        f"{report['practitioners_updated']:,} updated, "
        f"{report['practitioners_unchanged']:,} unchanged; "
        f"{report['locations_created']:,} clinic(s) created, "
        f"{report['locations_updated']:,} updated; "
        f"{report['certifications_added']:,} certification(s) added"
    )


def expired_jobs():
    """Jobs past their expiry that no task is working on (a running one is left until it
    stops, unless it has not moved for the whole expiry period: its worker died)."""
    now = timezone.now()
    stalled = now - dt.timedelta(hours=settings.IMPORT_EXPIRY_HOURS)
    return ImportJob.objects.filter(expires_at__lte=now).exclude(
        state__in=ImportJob.RUNNING, updated_at__gt=stalled
    )
