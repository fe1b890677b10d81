"""The data of practitioners who claim and keep their own listings: claims, the owners' requests
to staff, certificate evidence and the 90-day confirmation reminders.

Kept beside ``models.py`` (which imports these classes) so the owner side of the data reads in
one place; the rules that write it are in ``curation/claims.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EvidenceStorage(FileSystemStorage):
    """Certificate evidence lives under ``EVIDENCE_ROOT``, never under a public media path: it
    has no URL, and staff read it only through a view that checks their permission."""

    def __init__(self) -> None:
        super().__init__(base_url=None)

    @property
    def base_location(self) -> str:  # type: ignore[override]
        # Read on every use so a test (or a deployment) can point it elsewhere.
        return str(settings.EVIDENCE_ROOT)

    @property
    def location(self) -> str:  # type: ignore[override]
        return str(Path(self.base_location).resolve())

    def url(self, name: str | None) -> str:
        raise ValueError("Certificate evidence has no public URL.")

    def deconstruct(self):
        return ("practitioners.ownership.EvidenceStorage", (), {})


evidence_storage = EvidenceStorage()


def evidence_path(instance: CertificationEvidence, filename: str) -> str:
    # The name the owner gave the file is kept in ``original_name`` only: on disk it is a random
    # name with the extension its content proved.
    return f"{instance.practitioner_id}/{instance.token}{instance.extension}"


class ListingClaim(models.Model):
    """Someone says a listing is theirs, with the proof they gave and what staff decided."""

    class Method(models.TextChoices):
        EMAIL_CODE = "email_code", "Code sent to the listing's e-mail"
        LICENCE = "licence", "NPI and licence number"
        DISPUTE = "dispute", "Dispute (the listing has an owner)"

    class Status(models.TextChoices):
        AWAITING_CODE = "awaiting_code", "Waiting for the code"
        LICENCE_MATCHES = "licence_matches", "Licence matches"
        NEEDS_CHECKING = "needs_checking", "Needs checking"
        DISPUTE = "dispute", "Dispute"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    OPEN_FOR_STAFF = (Status.LICENCE_MATCHES, Status.NEEDS_CHECKING)

    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.CASCADE, related_name="claims"
    )
    claimant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="listing_claims"
    )
    method = models.CharField(max_length=12, choices=Method.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    # The code itself is never stored: only its keyed hash, when it lapses and how often a
    # wrong one was tried.
    code_hash = models.CharField(max_length=64, blank=True)
    code_sent_to = models.EmailField(blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    npi = models.CharField("NPI given", max_length=10, blank=True)
    licence_number = models.CharField(max_length=40, blank=True)
    licence_state = models.CharField(max_length=2, blank=True)
    message = models.TextField("claimant's message", max_length=2000, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="claim_status_created")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} claim on {self.practitioner} by {self.claimant}"

    @property
    def is_open(self) -> bool:
        return self.status in (
            self.Status.AWAITING_CODE,
            self.Status.LICENCE_MATCHES,
            self.Status.NEEDS_CHECKING,
            self.Status.DISPUTE,
        )


class OwnerRequest(models.Model):
    """An owner asks staff for what they cannot change themselves: a registry-owned field (name,
    NPI, profession, licences) or hiding the listing."""

    class Kind(models.TextChoices):
        CHANGE = "change", "Change a registry field"
        HIDE = "hide", "Hide the listing"

    class Field(models.TextChoices):
        NAME = "name", "Name"
        CREDENTIALS = "credentials", "Credentials"
        NPI = "npi", "NPI"
        PROFESSION = "profession", "Profession"
        LICENCES = "licences", "Licences"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DECLINED = "declined", "Declined"

    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.CASCADE, related_name="owner_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    field = models.CharField(max_length=20, choices=Field.choices, blank=True)
    value = models.CharField("requested value", max_length=300, blank=True)
    note = models.TextField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "status"], name="owner_request_kind_status")]

    def __str__(self) -> str:
        if self.kind == self.Kind.HIDE:
            return f"Hide {self.practitioner}"
        return f"{self.practitioner}: {self.get_field_display()} → {self.value}"


class CertificationEvidence(models.Model):
    """A file an owner uploaded to show a certification, and what staff made of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.CASCADE, related_name="evidence"
    )
    certification = models.ForeignKey(
        "practitioners.Certification", on_delete=models.PROTECT, related_name="+"
    )
    # The public certificate this evidence is for; null once staff reject it (the certificate
    # is then removed from the listing, this row keeps the reason for the owner).
    record = models.ForeignKey(
        "practitioners.PractitionerCertification",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="evidence",
    )
    token = models.CharField(max_length=32, unique=True)
    file = models.FileField(storage=evidence_storage, upload_to=evidence_path, max_length=200)
    content_type = models.CharField(max_length=30)
    size = models.PositiveIntegerField()
    original_name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rejection_reason = models.CharField(max_length=500, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "certification evidence"
        indexes = [models.Index(fields=["status", "created_at"], name="evidence_status_created")]

    def __str__(self) -> str:
        return f"{self.certification} evidence for {self.practitioner}"

    @property
    def extension(self) -> str:
        return {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}.get(
            self.content_type, ""
        )


class ConfirmationReminder(models.Model):
    """One 90-day reminder e-mailed to an owner: at most one per listing and due date, so the
    daily run never e-mails anyone twice for the same confirmation."""

    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.CASCADE, related_name="reminders"
    )
    due_on = models.DateField()
    sent_to = models.EmailField()
    sent_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-due_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "due_on"], name="one_reminder_per_due_date"
            )
        ]

    def __str__(self) -> str:
        return f"Reminder to {self.practitioner} due {self.due_on}"


def stale_before(on: dt.date | None = None) -> dt.date:
    """A listing last confirmed (by its owner or by staff) before this is "may be out of date"."""
    return (on or timezone.localdate()) - dt.timedelta(days=settings.LISTING_STALE_AFTER_DAYS)


def stale_listing_q(on: dt.date | None = None) -> Q:
    """Neither confirmed by the owner nor verified by staff within LISTING_STALE_AFTER_DAYS; a
    listing never confirmed counts from the day it was created."""
    cutoff = stale_before(on)
    cutoff_moment = timezone.make_aware(dt.datetime.combine(cutoff, dt.time.min))
    return Q(last_confirmed_on__lt=cutoff) | Q(
        last_confirmed_on__isnull=True, created_at__lt=cutoff_moment
    )
