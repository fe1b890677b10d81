"""How the national directory gets in: the NPI registry's monthly file (NPPES) -> listings.

``import_nppes`` streams the main file (``npidata_pfile_*.csv``: ~9.7 million rows, 330 quoted
columns, ~11 GB) in constant memory. Most rows are not ours, so every raw line first goes
through a byte-level pre-filter (does the start of a mapped taxonomy code appear in it at all,
or is its entity type blank, as on a deactivated NPI's row?) and only the few survivors are
decoded and CSV-parsed. Matches are written in batches with bulk queries.

Ownership rules, so that a monthly re-run is safe:

- ``Practitioner.nppes_values`` holds the values last written from the file, per field (and the
  practice location's fields under ``"location"``, the secondary location keys under
  ``"secondary_locations"``). A field whose current value differs from that was corrected by
  staff, and the file never overwrites it.
- Only a row whose ``Last Update Date`` is newer than ``source_updated_on`` changes anything, so
  re-running a file changes nothing and an older file never rolls a listing back.
- Status is set once, at creation; afterwards the file only ever suspends a deactivated NPI.
- Locations staff added (any ``source`` but NPPES) are never touched.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone

from ..models import Practitioner
from .bulk import forget_queries, small_sqlite_cache
from .nppes_reader import (
    BATCH_SIZE,
    LOCATIONS_OPTIONAL,
    LOCATIONS_REQUIRED,
    MAIN_OPTIONAL,
    MAIN_REQUIRED,
    NppesFormatError,
    NppesReport,
    Row,
    RowReader,
    TaxonomyMap,
    find_columns,
    parse_line,
    read_header,
    read_secondary_locations,
    scan_lines,
)
from .nppes_writer import Writer

__all__ = ["NppesFormatError", "NppesReport", "import_nppes", "import_nppes_from_text"]


class _DryRun(Exception):
    pass


# --- the service ------------------------------------------------------------------------------


def import_nppes(
    *,
    stream: BinaryIO,
    locations_stream: BinaryIO | None = None,
    states: Iterable[str] | None = None,
    status: str = Practitioner.Status.PUBLISHED,
    dry_run: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> NppesReport:
    """Import the NPPES main file (binary stream) and optionally the practice location file.

    Raises NppesFormatError, before writing anything, when a required column is missing.
    ``progress(bytes_read, rows_scanned, rows_matched)`` is called every 50,000 rows.
    On a dry run everything happens inside a transaction that is rolled back, so the report's
    counts are exactly what a real run would do.
    """
    if status not in Practitioner.Status.values:
        raise ValueError(f"status must be one of {', '.join(Practitioner.Status.values)}")
    state_set = {s.strip().upper() for s in states if s.strip()} if states is not None else None
    report = NppesReport(dry_run=dry_run)

    header, quoted = read_header(stream)
    columns = find_columns(header, MAIN_REQUIRED, MAIN_OPTIONAL, file_label="The NPPES file")
    location_columns = None
    if locations_stream is not None:
        location_header, _ = read_header(locations_stream)
        location_columns = find_columns(
            location_header,
            LOCATIONS_REQUIRED,
            LOCATIONS_OPTIONAL,
            file_label="The practice location file",
        )

    taxonomies = TaxonomyMap.from_database()
    reader = RowReader(columns, taxonomies, state_set)
    blank_entity = None
    if (columns["npi"], columns["entity_type"]) == (0, 1):
        # '"1234567893","",' (quoted) or '1234567893,,' (not): NPIs are always 10 digits.
        blank_entity = (slice(12, 16), b',"",') if quoted else (slice(10, 12), b",,")
    try:
        with transaction.atomic(), small_sqlite_cache():
            writer = Writer(
                report,
                status=status,
                track_locations=location_columns is not None,
                run_date=timezone.localdate(),
            )
            batch: list[Row] = []
            for line in scan_lines(
                stream,
                needles=taxonomies.needles(),
                blank_entity=blank_entity,
                report=report,
                progress=progress,
            ):
                outcome = reader.read(parse_line(line))
                if isinstance(outcome, str):
                    report.skipped[outcome] += 1
                    continue
                batch.append(outcome)
                if len(batch) >= BATCH_SIZE:
                    writer.write(batch)
                    batch = []
                    forget_queries()
            if batch:
                writer.write(batch)
            if progress is not None:
                progress(stream.tell(), report.scanned, report.matched_total)
            if locations_stream is not None and location_columns is not None:
                eligible = writer.eligible_npis
                if any(a > b for a, b in pairwise(eligible)):  # CMS sorts by NPI already
                    writer.eligible_npis = eligible = array("q", sorted(eligible))
                by_npi = read_secondary_locations(
                    locations_stream, location_columns, eligible, state_set
                )
                writer.sync_secondary_locations(by_npi)
            if dry_run:
                raise _DryRun
    except _DryRun:
        return report
    report.written = True
    return report


def import_nppes_from_text(text: str, locations: str | None = None, **options) -> NppesReport:
    """For tests and the admin: the same import from in-memory text."""
    return import_nppes(
        stream=io.BytesIO(text.encode()),
        locations_stream=io.BytesIO(locations.encode()) if locations is not None else None,
        **options,
    )
