"""Recording a roster: certificates, the review queue, the flags (see ingest/roster.py)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from ..models import (
    Certification,
    Location,
    Practitioner,
    PractitionerCertification,
    unique_listing_slugs,
)
from ..rosters import RosterEntry, RosterImport, RosterReview
from .roster import RosterError, RosterRow, _header_key, parse_date, read_roster
from .roster_match import match_rows

# --- Recording --------------------------------------------------------------------------------


@dataclass
class RosterSummary:
    rows_read: int = 0
    matched_by_npi: int = 0
    matched_confidently: int = 0
    matched_by_staff: int = 0
    sent_to_review: int = 0
    unmatched: int = 0
    certifications_added: int = 0
    reconfirmed: int = 0
    unchanged: int = 0
    flagged: int = 0
    created: int = 0
    unmatched_rows: list[RosterRow] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.rows_read} rows read: {self.matched_by_npi} matched by NPI, "
            f"{self.matched_confidently} matched confidently, "
            + (
                f"{self.matched_by_staff} decided by staff earlier, "
                if self.matched_by_staff
                else ""
            )
            + f"{self.sent_to_review} sent to review, {self.unmatched} unmatched"
            + (f" ({self.created} created as pending listings)" if self.created else "")
            + f"; {self.certifications_added} certifications added, "
            f"{self.reconfirmed} re-confirmed, {self.unchanged} already up to date, "
            f"{self.flagged} flagged as not on this roster."
        )


def level_for(technique: Certification, level: str) -> Certification:
    """The row's level ("M2", "Spine", "Graston Technique M2 (Advanced)") as one of ours, or the
    technique itself when the row names none; ValueError naming the known levels otherwise."""
    if not level.strip():
        return technique
    want = _header_key(level)
    levels = list(technique.levels.all())
    for candidate in [technique, *levels]:
        short = candidate.slug.removeprefix(technique.slug + "-")
        names = {
            _header_key(candidate.name),
            _header_key(candidate.slug),
            _header_key(short),
            _header_key(re.sub(r"\s*\(.*\)", "", candidate.name)),
        }
        names |= {_header_key(x) for x in re.findall(r"\((.*?)\)", candidate.name)}
        stripped = re.sub(r"\s*\(.*\)", "", candidate.name)
        for prefix in (technique.name, re.sub(r"\s*\(.*\)", "", technique.name), technique.slug):
            if stripped.lower().startswith(prefix.lower()):
                names.add(_header_key(stripped[len(prefix) :]))
        if want in names - {""}:
            return candidate
    known = ", ".join(c.slug.removeprefix(technique.slug + "-") for c in levels) or "none"
    raise ValueError(f"level {level!r} is not a level of {technique.name} (known: {known})")


def _reason(roster: RosterImport) -> str:
    return f"Confirmed on the {roster.source}"


def record_certificate(
    *,
    roster: RosterImport,
    practitioner_id: int,
    row: RosterRow,
    how: str,
    certification: Certification,
    summary: RosterSummary,
    user: AbstractBaseUser | None = None,
) -> None:
    """The certificate a roster row proves, verified on the roster's date against the roster;
    the listing joins the roster's entries (what a newer roster compares against)."""
    verifier = user if user is not None and user.is_authenticated else None
    # An UPDATE, else an INSERT: update_or_create costs four queries more for a new entry (two
    # savepoints, their releases and a locking read), which a roster of thousands pays thousands
    # of times. Both callers hold a transaction; one entry per listing per roster is a unique
    # constraint.
    entry = {"line": row.line, "how": how}
    if not RosterEntry.objects.filter(roster=roster, practitioner_id=practitioner_id).update(
        **entry
    ):
        RosterEntry.objects.create(roster=roster, practitioner_id=practitioner_id, **entry)
    record = (
        PractitionerCertification.objects.filter(
            practitioner_id=practitioner_id, certification=certification
        )
        .select_for_update()
        .first()
    )
    wanted = {
        "verified_on": roster.as_of,
        "verification_source": roster.source,
        "self_reported": False,
    }
    if row.certified_on:
        wanted["earned_on"] = row.certified_on
    if row.expires_on:
        wanted["expires_on"] = row.expires_on
    if record is None:
        record = PractitionerCertification(
            practitioner_id=practitioner_id,
            certification=certification,
            verified_by=verifier,
            **wanted,
        )
        record._change_reason = _reason(roster)
        if verifier is not None:
            record._history_user = verifier
        record.save()
        summary.certifications_added += 1
        return
    changed = [name for name, value in wanted.items() if getattr(record, name) != value]
    # An older roster imported after a newer one never moves a verification back in time.
    if record.verified_on and record.verified_on > roster.as_of:
        changed = [name for name in changed if name not in ("verified_on", "verification_source")]
    if not changed:
        summary.unchanged += 1
        return
    for name in changed:
        setattr(record, name, wanted[name])
    record.verified_by = verifier
    bulk_update_with_history(
        [record],
        PractitionerCertification,
        [*changed, "verified_by"],
        default_user=verifier,
        default_change_reason=_reason(roster),
    )
    Practitioner.objects.filter(pk=practitioner_id).update(last_confirmed_on=roster.as_of)
    summary.reconfirmed += 1


def _flag_absent(
    *, roster: RosterImport, on_roster: set[int], maybe: set[int], summary: RosterSummary
) -> None:
    """Listings an earlier roster of this body confirmed and this newer one does not list: their
    certificates stop reading "verified" (back to the staff queue) and staff get a review row.
    Nothing is deleted: people drop off rosters by mistake too."""
    if RosterImport.objects.filter(technique=roster.technique, as_of__gt=roster.as_of).exists():
        return  # an older roster read late says nothing about who left since
    earlier = RosterImport.objects.filter(technique=roster.technique, as_of__lt=roster.as_of)
    gone = (
        RosterEntry.objects.filter(roster__in=earlier)
        .exclude(practitioner_id__in=on_roster | maybe)
        .values_list("practitioner_id", flat=True)
        .distinct()
    )
    sources = [r.source for r in earlier]
    note = f"Not on the {roster.source}"
    family = Certification.objects.filter(
        Q(pk=roster.technique_id) | Q(parent_id=roster.technique_id)
    )
    for practitioner_id in sorted(set(gone)):
        records = list(
            PractitionerCertification.objects.filter(
                practitioner_id=practitioner_id,
                certification__in=family,
                verification_source__in=sources,
            ).select_for_update()
        )
        _review, made = RosterReview.objects.get_or_create(
            roster=roster,
            kind=RosterReview.Kind.ABSENT,
            row_key=f"listing-{practitioner_id}",
            defaults={
                "practitioner_id": practitioner_id,
                "row": {
                    "name": Practitioner.objects.filter(pk=practitioner_id)
                    .values_list("name", flat=True)
                    .first()
                    or ""
                },
            },
        )
        if not records and not made:
            continue
        for record in records:
            record.verified_on = None
            record.verification_source = f"{note} (was: {record.verification_source})"[:200]
        if records:
            bulk_update_with_history(
                records,
                PractitionerCertification,
                ["verified_on", "verification_source"],
                default_change_reason=note,
            )
        summary.flagged += 1


def _create_pending(*, row: RosterRow, roster: RosterImport, technique: Certification) -> int:
    """An unmatched roster row as a pending listing for staff (only with --create-unmatched)."""
    practitioner = Practitioner(
        name=row.name[:200],
        credentials=row.credentials[:100],
        phone=row.phone[:30],
        email=row.email if "@" in row.email else "",
        npi="",
        status=Practitioner.Status.PENDING,
        status_reason=f"From the {roster.source}, line {row.line}: no listing matched"[:200],
        source=Practitioner.Source.CSV,
        slug=unique_listing_slugs([(row.name, row.city, "")])[0],
    )
    practitioner._change_reason = f"Created from the {roster.source}"
    practitioner.save()
    if row.address and row.city and row.state and row.postal_code:
        Location.objects.create(
            practitioner=practitioner,
            address_line1=row.address[:200],
            city=row.city[:100],
            state=row.state,
            postal_code=row.postal_code,
            phone=row.phone[:30],
            source=Location.Source.CSV,
        )
    return practitioner.pk


def _decoded(path: Path) -> str:
    """The file as text; a byte that is not UTF-8 is named by its line (a roster is small
    enough to read whole, which a decoding reader's buffering would not allow)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RosterError(
            [f"line {line}: the file is not UTF-8 text (save the spreadsheet as CSV UTF-8)"]
        ) from None


def import_roster(
    *,
    path: str | Path | None = None,
    stream: Iterable[str] | None = None,
    technique: Certification,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    create_unmatched: bool = False,
    file_name: str = "",
    user: AbstractBaseUser | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RosterSummary:
    """Read, match and record one roster in one transaction (rolled back for a dry run, so the
    summary of a dry run is exactly what the real run would do)."""
    if technique.parent_id is not None:
        raise RosterError(
            [f"{technique.name} is a level; name the technique ({technique.parent.slug})."]
        )
    if stream is None:
        if path is None:
            raise ValueError("Give a path or a stream.")
        rows = read_roster(io.StringIO(_decoded(Path(path)), newline=""))
        file_name = file_name or Path(path).name
    else:
        rows = read_roster(stream)
    as_of = as_of or timezone.localdate()
    levels: dict[int, Certification] = {}
    errors = []
    for row in rows:
        try:
            levels[row.line] = level_for(technique, row.level)
        except ValueError as error:
            errors.append(f"line {row.line}: {error}")
    if errors:
        raise RosterError(errors)
    summary = RosterSummary(rows_read=len(rows))
    with transaction.atomic():
        roster, _ = RosterImport.objects.get_or_create(
            technique=technique,
            as_of=as_of,
            defaults={"body": technique.issuing_body or technique.name, "file_name": file_name},
        )
        decided = {
            key: pk
            for key, pk, status in roster.reviews.filter(kind=RosterReview.Kind.DOUBTFUL)
            .exclude(status=RosterReview.Status.OPEN)
            .values_list("row_key", "practitioner_id", "status")
            if status == RosterReview.Status.ACCEPTED or pk is None
        }
        outcomes = match_rows(rows, decided=decided)
        on_roster: set[int] = set()
        maybe: set[int] = set()
        for done, outcome in enumerate(outcomes, 1):
            row = outcome.row
            if outcome.listing_id is not None:
                counter = {
                    "npi": "matched_by_npi",
                    "confident": "matched_confidently",
                    "staff": "matched_by_staff",
                }
                setattr(summary, counter[outcome.how], getattr(summary, counter[outcome.how]) + 1)
                record_certificate(
                    roster=roster,
                    practitioner_id=outcome.listing_id,
                    row=row,
                    how=outcome.how,
                    certification=levels[row.line],
                    summary=summary,
                    user=user,
                )
                on_roster.add(outcome.listing_id)
            elif outcome.how == "review":
                summary.sent_to_review += 1
                maybe |= {c.listing.pk for c in outcome.candidates}
                RosterReview.objects.update_or_create(
                    roster=roster,
                    kind=RosterReview.Kind.DOUBTFUL,
                    row_key=row.key,
                    defaults={
                        "line": row.line,
                        "row": row.shown(),
                        "candidates": [c.shown() for c in outcome.candidates],
                    },
                )
            else:
                summary.unmatched += 1
                summary.unmatched_rows.append(row)
                if create_unmatched and row.key not in decided:
                    pk = _create_pending(row=row, roster=roster, technique=technique)
                    summary.created += 1
                    record_certificate(
                        roster=roster,
                        practitioner_id=pk,
                        row=row,
                        how="created",
                        certification=levels[row.line],
                        summary=summary,
                        user=user,
                    )
                    on_roster.add(pk)
            if progress is not None:
                progress(done, len(outcomes))
        _flag_absent(roster=roster, on_roster=on_roster, maybe=maybe, summary=summary)
        roster.summary = {k: v for k, v in asdict(summary).items() if k != "unmatched_rows"}
        roster.file_name = file_name or roster.file_name
        roster.save(update_fields=["summary", "file_name", "imported_at"])
        if dry_run:
            transaction.set_rollback(True)
    return summary


# --- Staff decisions --------------------------------------------------------------------------


@transaction.atomic
def decide_review(
    *, review: RosterReview, practitioner_id: int | None, user: AbstractBaseUser | None = None
) -> None:
    """Staff accept one candidate of a doubtful row (its certificate is recorded as a confident
    match's would be) or none of them (``practitioner_id=None``). A re-run keeps the decision."""
    review = (
        RosterReview.objects.select_for_update()
        .select_related("roster__technique")
        .get(pk=review.pk)
    )
    if review.kind != RosterReview.Kind.DOUBTFUL:
        raise ValueError("Only a doubtful match has candidates to accept.")
    if review.status != RosterReview.Status.OPEN:
        raise ValueError("This row was already decided.")
    allowed = {c["practitioner_id"] for c in review.candidates}
    if practitioner_id is not None and practitioner_id not in allowed:
        raise ValueError("Choose one of the row's candidates.")
    roster = review.roster
    if practitioner_id is not None:
        if RosterEntry.objects.filter(roster=roster, practitioner_id=practitioner_id).exists():
            raise ValueError("That listing is already matched to another row of this roster.")
        data = review.row
        row = RosterRow(
            line=review.line,
            name=data.get("name", ""),
            certified_on=parse_date(data.get("certified_on", "")),
            expires_on=parse_date(data.get("expires_on", "")),
        )
        record_certificate(
            roster=roster,
            practitioner_id=practitioner_id,
            row=row,
            how="staff",
            certification=level_for(roster.technique, data.get("level", "")),
            summary=RosterSummary(),
            user=user,
        )
    review.practitioner_id = practitioner_id
    review.status = (
        RosterReview.Status.ACCEPTED if practitioner_id else RosterReview.Status.REJECTED
    )
    review.decided_by = user if user is not None and user.is_authenticated else None
    review.decided_at = timezone.now()
    review.save()
