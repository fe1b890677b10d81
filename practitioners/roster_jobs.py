"""A certifying body's roster uploaded in the admin, as a job of the CSV import's machinery
(:mod:`practitioners.imports`, the ``ImportJob`` row, the ``preview_import`` and ``run_import``
tasks): upload (stored; the header is checked in the request, so a file that is not a roster is
refused at once) -> preview task (a dry run of :func:`~practitioners.ingest.roster.import_roster`:
how many rows would match by NPI, by name and place, go to review, stay unmatched) -> confirm ->
import task (the same call, for real) -> the summary and links to the review queue.

A roster is all or nothing, as on the command line: one bad row refuses the file (a half-read
roster would make the unread people look as if they had dropped off it), so there is no
"skip the bad rows" here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from django.utils import timezone

from .imports import (
    LISTED_ERRORS,
    Verdict,
    progress_file_writer,
    progress_path,
    record_failure,
    record_result,
)
from .ingest.roster import RosterError, check_layout, find_columns, import_roster
from .models import Certification, ImportJob, RosterImport

# How many unmatched rows the page lists (the count is always exact).
LISTED_ROWS = 500
# Bytes of the upload read in the request to check its header row.
HEADER_BYTES = 64 * 1024

_LINE = re.compile(r"^line (\d+): (.*)$", re.S)


def header_problem(head: bytes) -> str:
    """Why the start of an upload is not a roster we can read, or "" when its header is fine.
    Only the header row is read here (the request stays quick); the rows are the preview's."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if len(head) >= HEADER_BYTES and error.start >= len(head) - 4:
            text = head[: error.start].decode("utf-8-sig")  # a character cut by the read
        else:
            return "The file is not UTF-8 text (save the spreadsheet as CSV UTF-8)."
    if "\x00" in text:
        return "The file is not a CSV (it holds NUL bytes: a spreadsheet's own format?)."
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        return "Line 1: the file is empty; a roster needs a header row and one row a person."
    headers = next(csv.reader(io.StringIO(first)), [])
    try:
        check_layout(find_columns(headers), headers)
    except RosterError as error:
        return "Line 1: " + error.messages[0]
    return ""


def job_options(*, technique: Certification, as_of: dt.date, create_unmatched: bool) -> dict:
    return {
        "technique": technique.slug,
        "technique_name": technique.name,
        "as_of": as_of.isoformat(),
        "create_unmatched": create_unmatched,
    }


def _progress_writer(job: ImportJob):
    """The CSV import's progress file (:func:`~practitioners.imports.progress_file_writer`):
    the roster is recorded in one transaction, so the job's row would show nothing until the
    end."""
    write = progress_file_writer(job)

    def progress(done: int, total: int) -> None:
        write(done, 0, total)

    return progress


def _errors(messages: list[str]) -> list[list]:
    listed = []
    for message in messages[:LISTED_ERRORS]:
        found = _LINE.match(message)
        listed.append([int(found.group(1)), found.group(2)] if found else [0, message])
    return listed


def run_phase(*, job: ImportJob, phase: str, path: Path) -> dict:
    """The roster's preview (a dry run, rolled back) or its import, from the stored file."""
    options = job.options
    technique = Certification.objects.filter(slug=options.get("technique", "")).first()
    try:
        if technique is None:
            raise RosterError([f"The technique {options.get('technique')!r} no longer exists."])
        summary = import_roster(
            path=path,
            technique=technique,
            as_of=dt.date.fromisoformat(options["as_of"]),
            dry_run=phase == "preview",
            create_unmatched=bool(options.get("create_unmatched")),
            file_name=job.file_name,
            user=job.created_by,
            progress=_progress_writer(job),
        )
    except RosterError as error:
        # The file's fault: the page lists why, line by line, and nothing was written.
        progress_path(job).unlink(missing_ok=True)
        values = {
            "rows": 0,
            "error_count": len(error.messages),
            "errors": _errors(error.messages),
            "file_error": error.messages[0] if len(error.messages) == 1 else "",
            "written": False,
        }
        state = ImportJob.State.PREVIEWED if phase == "preview" else ImportJob.State.FAILED
        ImportJob.objects.filter(pk=job.pk).update(
            state=state,
            errors_count=len(error.messages),
            message="" if phase == "preview" else "Nothing was written: the roster was refused.",
            updated_at=timezone.now(),
            **({"preview": values} if phase == "preview" else {"result": values}),
        )
        return {"job": job.pk, "phase": phase, "errors": len(error.messages)}
    except Exception as error:
        record_failure(job=job, phase=phase, what="Roster", error=error)
        raise
    values = {
        "rows": summary.rows_read,
        "matched_by_npi": summary.matched_by_npi,
        "matched_confidently": summary.matched_confidently,
        "matched_by_staff": summary.matched_by_staff,
        "sent_to_review": summary.sent_to_review,
        "unmatched": summary.unmatched,
        "certifications_added": summary.certifications_added,
        "reconfirmed": summary.reconfirmed,
        "unchanged": summary.unchanged,
        "flagged": summary.flagged,
        "created": summary.created,
        "unmatched_rows": [
            [row.line, row.name, ", ".join(p for p in (row.city, row.state, row.postal_code) if p)]
            for row in summary.unmatched_rows[:LISTED_ROWS]
        ],
        "error_count": 0,
        "errors": [],
        "file_error": "",
        "written": phase == "import",
        "summary": summary.line(),
    }
    if phase == "import":
        roster = RosterImport.objects.filter(
            technique=technique, as_of=dt.date.fromisoformat(options["as_of"])
        ).first()
        values["roster_id"] = roster.pk if roster is not None else None
    record_result(job=job, phase=phase, values=values, rows=summary.rows_read, errors=0)
    return {"job": job.pk, "phase": phase, "rows": summary.rows_read}


def verdict_of(job: ImportJob) -> Verdict:
    """The one sentence a roster's preview ends with; a roster is imported whole or not at all."""
    preview = job.preview
    if job.state == ImportJob.State.FAILED and not preview:
        return Verdict(job.message or "The preview stopped; nothing was written.", level="error")
    if not preview:
        return Verdict("Checking the roster and matching it to the listings…")
    if preview["error_count"]:
        count = preview["error_count"]
        return Verdict(
            f"This roster cannot be imported: {count:,} problem{'' if count == 1 else 's'} "
            "(listed below), and one bad row refuses the whole file, so that nobody on it looks "
            "dropped. Correct the file and upload it again; nothing was written.",
            level="error",
        )
    if preview["rows"] == 0:
        return Verdict(
            "Line 1: the file has a header row but no people; there is nothing to import.",
            level="error",
        )
    return Verdict(
        f"{_matches(preview)}. Importing will write: {_writes(preview)}.", can_import_all=True
    )


def _matches(p: dict) -> str:
    staff = f", {p['matched_by_staff']:,} as staff decided earlier" if p["matched_by_staff"] else ""
    return (
        f"{p['rows']:,} row{'' if p['rows'] == 1 else 's'} read: {p['matched_by_npi']:,} would "
        f"match by NPI, {p['matched_confidently']:,} by name and place{staff}, "
        f"{p['sent_to_review']:,} need staff review, {p['unmatched']:,} unmatched"
    )


def _writes(p: dict) -> str:
    created = f", {p['created']:,} pending listing(s) created" if p["created"] else ""
    return (
        f"{p['certifications_added']:,} certification(s) added, {p['reconfirmed']:,} "
        f"re-confirmed, {p['unchanged']:,} already up to date, {p['flagged']:,} flagged as not on "
        f"this roster{created}"
    )
