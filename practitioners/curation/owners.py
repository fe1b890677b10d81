"""What the owner of a claimed listing may change, and the staff decisions on it.

The owner edits their practice details (live at once, in the history with the owner as author),
adds, moves and closes clinics (geocoded after the commit, at the ZIP centroid until then),
adds certifications with evidence (shown as "self-reported" until staff verify or reject the
evidence), confirms the listing is still accurate, and asks staff for what they cannot change
(registry fields, hiding the listing). Every function is keyword-only and runs in one
transaction; each takes the listing and its owner and refuses a listing the owner does not own.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from .. import geocoding, notify, practice, tasks
from ..models import (
    Certification,
    CertificationEvidence,
    Location,
    OwnerRequest,
    Practitioner,
    PractitionerCertification,
)
from ..ownership import evidence_storage
from .services import ClinicSubmission, _with_history_user, suspend

User = AbstractBaseUser
OWNER = "Owner"
# What the owner edits without asking; the rest (name, NPI, profession, licences, credentials)
# stays with the registry and staff, changed through a request.
OWNED_FIELDS = (
    "bio",
    "website",
    "phone",
    "email",
    "new_patients",
    "telehealth",
)
VERIFIED_SOURCE = "certificate reviewed"
# What a file must start with to be what it claims: the content decides, never the name.
SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}


class NotYours(Exception):
    """The listing, clinic or certificate is not the signed-in owner's (a view answers 404)."""


class OwnerRefused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _own(practitioner: Practitioner, owner: User) -> Practitioner:
    """The listing, locked, if ``owner`` owns it."""
    locked = Practitioner.objects.select_for_update().filter(pk=practitioner.pk).first()
    if locked is None or locked.claimed_by_id is None or locked.claimed_by_id != owner.pk:
        raise NotYours()
    return locked


def _email_owner(practitioner: Practitioner, template: str, **context) -> None:
    owner = practitioner.claimed_by
    if owner is None or not owner.email:
        return
    context = {"practitioner": practitioner, **context}
    notify.send_mail_later(
        subject=render_to_string(f"claims/email/{template}_subject.txt", context).strip(),
        body=render_to_string(f"claims/email/{template}_message.txt", context),
        to=[owner.email],
    )


# --- Practice details -------------------------------------------------------------------------


def update_listing(*, practitioner: Practitioner, owner: User, changes: dict) -> list[str]:
    """Apply the owner's edits to the fields they own; returns the names that changed."""
    unknown = set(changes) - set(OWNED_FIELDS)
    if unknown:
        raise OwnerRefused(f"These are not yours to change: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        listing = _own(practitioner, owner)
        changed = [name for name, value in changes.items() if getattr(listing, name) != value]
        for name in changed:
            setattr(listing, name, changes[name])
        dated = []
        if "new_patients" in changes:
            # The practitioner saved the status, changed or not, so they have checked it: the
            # public sees "confirmed <month>" (practice.PRACTITIONER_GROUPS).
            dated = practice.date_changed_groups(
                listing, changed=["new_patients"], on=timezone.localdate()
            )
        if not changed and not dated:
            return []
        said = f"edited {', '.join(changed)}" if changed else "confirmed new patients"
        _with_history_user(listing, owner, f"{OWNER}: {said}")
        listing.save(update_fields=[*changed, *dated, "updated_at"])
    return changed


def update_practice(
    *,
    practitioner: Practitioner,
    owner: User,
    languages: list[practice.Language] | None = None,
    payers: list[practice.Payer] | None = None,
    payment: dict[str, object] | None = None,
    new_patients: str | None = None,
) -> list[str]:
    """The owner saves languages, payment or new-patient status: live at once (as every owner
    edit), in the history with the owner as author, and each group saved is dated today
    ("payment confirmed December 2026"). Returns the groups that changed."""
    with transaction.atomic():
        listing = _own(practitioner, owner)
        return practice.save_practice_details(
            practitioner=listing,
            on=timezone.localdate(),
            languages=languages,
            payers=payers,
            payment=payment,
            new_patients=new_patients,
            user=owner,
            author=OWNER,
        )


def update_clinic_practice(
    *,
    practitioner: Practitioner,
    owner: User,
    location_id: int,
    accessibility: dict[str, bool] | None = None,
    hours: list[tuple[int, dt.time, dt.time]] | None = None,
    reopens_on: dt.date | None = None,
) -> list[str]:
    """The owner saves a clinic's accessibility, weekly hours and temporary closure (live,
    dated today); a clinic not on their listing is :class:`NotYours`."""
    with transaction.atomic():
        listing = _own(practitioner, owner)
        location = _clinic(listing, location_id)
        return practice.save_clinic_practice(
            location=location,
            on=timezone.localdate(),
            accessibility=accessibility,
            hours=hours,
            reopens_on=reopens_on,
            user=owner,
            author=OWNER,
        )


def confirm_practice(
    *,
    practitioner: Practitioner,
    owner: User,
    location_id: int | None = None,
    groups: list[str] | None = None,
) -> list[str]:
    """ "These are still right": today is the last-checked date of the listing's groups
    (languages, payment, new patients), or of one clinic's (accessibility, hours), nothing
    else changes. Returns the date fields set."""
    with transaction.atomic():
        listing = _own(practitioner, owner)
        instance = listing if location_id is None else _clinic(listing, location_id)
        known = practice.PRACTITIONER_GROUPS if location_id is None else practice.CLINIC_GROUPS
        return practice.confirm_practice(
            instance=instance,
            groups=list(known) if groups is None else groups,
            on=timezone.localdate(),
            user=owner,
            author=OWNER,
        )


def confirm_listing(*, practitioner: Practitioner, owner: User | None) -> dt.date:
    """ "My listing is still accurate": today is the owner's confirmation date. ``owner`` is
    None for the signed reminder link, which proves the owner by itself."""
    today = timezone.localdate()
    with transaction.atomic():
        if owner is None:
            listing = Practitioner.objects.select_for_update().get(pk=practitioner.pk)
            author = listing.claimed_by
        else:
            listing = _own(practitioner, owner)
            author = owner
        listing.owner_confirmed_on = today
        listing.last_confirmed_on = today
        _with_history_user(listing, author, f"{OWNER}: confirmed the listing is accurate")
        listing.save(update_fields=["owner_confirmed_on", "last_confirmed_on", "updated_at"])
    return today


# --- Clinics ----------------------------------------------------------------------------------


def _clinic(listing: Practitioner, location_id: int) -> Location:
    location = (
        Location.objects.select_for_update()
        .filter(pk=location_id, practitioner_id=listing.pk)
        .first()
    )
    if location is None:
        raise NotYours()
    return location


def _geocode_after_commit(location: Location) -> None:
    # Through the same path as every new address: the ZIP centroid now (searchable, marked
    # approximate), the geocoding task after the commit so a slow provider holds no lock.
    tasks.geocode_after_commit(location_ids=[location.pk])


def add_clinic(*, practitioner: Practitioner, owner: User, clinic: ClinicSubmission) -> Location:
    with transaction.atomic():
        listing = _own(practitioner, owner)
        location = clinic.new_location(practitioner=listing, source=Location.Source.OWNER)
        _with_history_user(location, owner, f"{OWNER}: added a clinic")
        location.save()
        _geocode_after_commit(location)
    return location


def move_clinic(
    *, practitioner: Practitioner, owner: User, location_id: int, clinic: ClinicSubmission
) -> Location:
    with transaction.atomic():
        listing = _own(practitioner, owner)
        location = _clinic(listing, location_id)
        moved = (
            location.address_line1,
            location.address_line2,
            location.city,
            location.state,
            location.postal_code,
        ) != (
            clinic.address_line1,
            clinic.address_line2,
            clinic.city,
            clinic.state,
            clinic.postal_code,
        )
        for name in ("name", "address_line1", "address_line2", "city", "state", "postal_code"):
            setattr(location, name, getattr(clinic, name))
        location.phone = clinic.phone
        if moved:
            geocoding.place_at_zip_centroid(location)
        _with_history_user(location, owner, f"{OWNER}: {'moved' if moved else 'edited'} a clinic")
        location.save()
        if moved:
            _geocode_after_commit(location)
    return location


def close_clinic(*, practitioner: Practitioner, owner: User, location_id: int) -> None:
    with transaction.atomic():
        listing = _own(practitioner, owner)
        location = _clinic(listing, location_id)
        if not Location.objects.filter(practitioner_id=listing.pk).exclude(pk=location.pk).exists():
            raise OwnerRefused(
                "A listing needs at least one clinic. Add the new one first, or ask us to hide "
                "the listing."
            )
        _with_history_user(location, owner, f"{OWNER}: closed a clinic")
        location.delete()


# --- Certifications and their evidence --------------------------------------------------------


@dataclass
class Upload:
    """An uploaded file as the form received it: its name as given, its size and its bytes."""

    name: str
    size: int
    content: bytes


def evidence_type(upload: Upload) -> str:
    """The evidence's type from its first bytes, or :class:`OwnerRefused` saying why not."""
    limit_mb = settings.EVIDENCE_MAX_BYTES // (1024 * 1024)
    if upload.size <= 0 or not upload.content:
        raise OwnerRefused("The file is empty. Choose the PDF, JPEG or PNG of your certificate.")
    if (
        upload.size > settings.EVIDENCE_MAX_BYTES
        or len(upload.content) > settings.EVIDENCE_MAX_BYTES
    ):
        raise OwnerRefused(f"The file is larger than {limit_mb} MB. Send a smaller scan or photo.")
    for signature, content_type in SIGNATURES.items():
        if upload.content.startswith(signature):
            return content_type
    raise OwnerRefused(
        "That file is not a PDF, JPEG or PNG (whatever its name says). Send the certificate "
        "as one of those."
    )


def add_certification(
    *,
    practitioner: Practitioner,
    owner: User,
    certification: Certification,
    upload: Upload,
    credential_number: str = "",
    earned_on: dt.date | None = None,
    expires_on: dt.date | None = None,
) -> CertificationEvidence:
    """The owner says they hold ``certification`` and shows ``upload``: it is on the listing at
    once as "self-reported", and the evidence waits for staff."""
    content_type = evidence_type(upload)  # before anything is written
    stored = ""
    try:
        with transaction.atomic():
            listing = _own(practitioner, owner)
            existing = PractitionerCertification.objects.filter(
                practitioner_id=listing.pk, certification=certification
            ).first()
            if existing is not None and existing.verified_on is not None:
                raise OwnerRefused(f"{certification.name} is on your listing already, verified.")
            if (
                existing is not None
                and existing.evidence.filter(status=CertificationEvidence.Status.PENDING).exists()
            ):
                raise OwnerRefused(f"Your {certification.name} evidence is waiting for review.")
            record = existing or PractitionerCertification(
                practitioner=listing, certification=certification, self_reported=True
            )
            record.credential_number = credential_number.strip()[:60]
            record.earned_on = earned_on
            record.expires_on = expires_on
            _with_history_user(record, owner, f"{OWNER}: added a certification (self-reported)")
            record.save()
            evidence = CertificationEvidence(
                practitioner=listing,
                certification=certification,
                record=record,
                token=secrets.token_hex(16),
                content_type=content_type,
                size=upload.size,
                original_name=upload.name[:200],
                uploaded_by=owner,
            )
            evidence.file.save("evidence", ContentFile(upload.content), save=False)
            stored = evidence.file.name
            evidence.save()
    except Exception:
        # Nothing of a failed upload stays behind: the rows rolled back, the file goes too.
        if stored:
            evidence_storage.delete(stored)
        raise
    return evidence


def verify_evidence(*, evidence: CertificationEvidence, user: User) -> None:
    """Staff read the certificate: the certification is verified (source "certificate
    reviewed", today, by them)."""
    today = timezone.localdate()
    with transaction.atomic():
        evidence = CertificationEvidence.objects.select_for_update().get(pk=evidence.pk)
        if evidence.status != CertificationEvidence.Status.PENDING or evidence.record_id is None:
            raise OwnerRefused("This evidence has been reviewed already.")
        record = PractitionerCertification.objects.select_for_update().get(pk=evidence.record_id)
        record.verified_on = today
        record.verified_by = user
        record.verification_source = VERIFIED_SOURCE
        _with_history_user(record, user, f"Verified against {VERIFIED_SOURCE}")
        record.save()
        evidence.status = CertificationEvidence.Status.VERIFIED
        evidence.reviewed_by = user
        evidence.reviewed_at = timezone.now()
        evidence.save(update_fields=["status", "reviewed_by", "reviewed_at"])
        Practitioner.objects.filter(pk=evidence.practitioner_id).update(last_confirmed_on=today)


def reject_evidence(*, evidence: CertificationEvidence, user: User, reason: str) -> None:
    """Staff do not accept the evidence: the self-reported certification leaves the listing,
    and the owner sees (and is e-mailed) the reason."""
    reason = reason.strip()[:500]
    if not reason:
        raise OwnerRefused("Say why the evidence is rejected: the owner is told.")
    with transaction.atomic():
        evidence = (
            CertificationEvidence.objects.select_for_update(of=("self",))
            .select_related("practitioner__claimed_by", "certification")
            .get(pk=evidence.pk)
        )
        if evidence.status != CertificationEvidence.Status.PENDING:
            raise OwnerRefused("This evidence has been reviewed already.")
        record = evidence.record
        if record is not None and record.verified_on is None:
            _with_history_user(record, user, f"Evidence rejected: {reason}")
            record.delete()
        evidence.record = None
        evidence.status = CertificationEvidence.Status.REJECTED
        evidence.rejection_reason = reason
        evidence.reviewed_by = user
        evidence.reviewed_at = timezone.now()
        evidence.save(
            update_fields=["record", "status", "rejection_reason", "reviewed_by", "reviewed_at"]
        )
        _email_owner(evidence.practitioner, "evidence_rejected", evidence=evidence)


# --- Requests to staff ------------------------------------------------------------------------


def request_change(
    *, practitioner: Practitioner, owner: User, field: str, value: str, note: str = ""
) -> OwnerRequest:
    if field not in OwnerRequest.Field.values:
        raise OwnerRefused("Choose what should change.")
    with transaction.atomic():
        listing = _own(practitioner, owner)
        return OwnerRequest.objects.create(
            practitioner=listing,
            requested_by=owner,
            kind=OwnerRequest.Kind.CHANGE,
            field=field,
            value=value.strip()[:300],
            note=note.strip()[:2000],
        )


def request_hide(*, practitioner: Practitioner, owner: User, note: str = "") -> OwnerRequest:
    """Registry data is public, so hiding is staff's decision; the request is recorded."""
    with transaction.atomic():
        listing = _own(practitioner, owner)
        open_request = OwnerRequest.objects.filter(
            practitioner=listing, kind=OwnerRequest.Kind.HIDE, status=OwnerRequest.Status.OPEN
        ).first()
        if open_request is not None:
            return open_request
        return OwnerRequest.objects.create(
            practitioner=listing,
            requested_by=owner,
            kind=OwnerRequest.Kind.HIDE,
            note=note.strip()[:2000],
        )


@transaction.atomic
def resolve_requests(
    *, requests: QuerySet[OwnerRequest], user: User, done: bool, note: str = ""
) -> int:
    """Staff close owners' requests; a hide request marked done takes the listing off the
    public site. Each owner is e-mailed the outcome."""
    rows = list(
        requests.filter(status=OwnerRequest.Status.OPEN)
        .select_for_update(of=("self",))
        .select_related("practitioner__claimed_by")
    )
    now = timezone.now()
    for row in rows:
        row.status = OwnerRequest.Status.DONE if done else OwnerRequest.Status.DECLINED
        row.resolved_by = user
        row.resolved_at = now
        row.resolution_note = note.strip()[:500]
        row.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note"])
        if done and row.kind == OwnerRequest.Kind.HIDE:
            suspend(
                practitioners=Practitioner.objects.filter(pk=row.practitioner_id),
                reason="Hidden at the owner's request",
                user=user,
            )
        _email_owner(row.practitioner, "request_resolved", request=row)
    return len(rows)
