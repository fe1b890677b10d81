"""The data a certifying body's roster leaves behind: which roster was imported, which listings
were on it, and the rows staff must decide (a doubtful match, or a listing that dropped off).

The matching itself lives in :mod:`practitioners.ingest.roster`; these tables let a newer roster
tell who was on an earlier one, and let a re-run of the same file find what it already did.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RosterImport(models.Model):
    """One roster of one technique's body, as of one date (the same file re-run is the same row)."""

    technique = models.ForeignKey(
        "practitioners.Certification", on_delete=models.PROTECT, related_name="rosters"
    )
    as_of = models.DateField()
    body = models.CharField(max_length=120)
    file_name = models.CharField(max_length=255, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["technique", "as_of"], name="one_roster_per_date")
        ]

    def __str__(self) -> str:
        return f"{self.body} roster, {self.as_of.isoformat()}"

    @property
    def source(self) -> str:
        """The verification source written on every certificate this roster confirms."""
        return str(self)


class RosterEntry(models.Model):
    """A listing found on a roster (by NPI, a confident match, or a staff decision)."""

    roster = models.ForeignKey(RosterImport, on_delete=models.CASCADE, related_name="entries")
    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.CASCADE, related_name="roster_entries"
    )
    line = models.PositiveIntegerField()
    how = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["roster", "practitioner"], name="one_entry_per_listing_per_roster"
            )
        ]

    def __str__(self) -> str:
        return f"{self.roster}: line {self.line}"


class RosterReview(models.Model):
    """Something a roster import could not settle alone; staff accept one candidate or none."""

    class Kind(models.TextChoices):
        DOUBTFUL = "doubtful", "Doubtful match"
        ABSENT = "absent", "Not on the newer roster"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "None of them"

    roster = models.ForeignKey(RosterImport, on_delete=models.CASCADE, related_name="reviews")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DOUBTFUL)
    # The roster row as read (line number, fields) and, best first, each candidate with its score
    # and the evidence for it: what staff compare side by side.
    row_key = models.CharField(max_length=64)
    line = models.PositiveIntegerField(default=0)
    row = models.JSONField(default=dict)
    candidates = models.JSONField(default=list)
    practitioner = models.ForeignKey(
        "practitioners.Practitioner",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="roster_reviews",
        help_text="The listing accepted (a doubtful match) or the listing that dropped off.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["roster", "kind", "row_key"], name="one_review_per_row")
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ABSENT:
            return f"Not on the {self.roster.as_of.isoformat()} roster: {self.row.get('name', '')}"
        return f"{self.roster}, line {self.line}: {self.row.get('name', '')}"
