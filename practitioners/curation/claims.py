"""Claiming a listing: the proofs a practitioner can give, staff's decision, one owner per
listing.

Proof, strongest first:

1. The listing has an e-mail on file: a code is sent to that address; entering it makes the
   claimant the owner at once (:func:`start_email_claim`, :func:`confirm_claim_code`).
2. No e-mail (most NPI-registry listings): the claimant gives the listing's NPI and a licence
   number and state; a match with the licences the registry lists puts the claim in the staff
   queue as "licence matches", anything else as "needs checking" (:func:`claim_by_licence`).
3. Staff approve or reject with a reason; the claimant is e-mailed either way.

A listing that already has an owner is never handed over by a claim: the claim becomes a
dispute for staff (:func:`dispute_claim`). Every function is keyword-only and runs in one
transaction; every step shows in the listing's history (``history.py`` reads the claims).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .. import notify
from ..models import ListingClaim, Practitioner
from .services import _with_history_user

User = AbstractBaseUser
# The reason recorded on what an owner changes (history.py shows it as the author).
OWNER = "Owner"


class ClaimRefused(Exception):
    """The claim cannot go ahead; ``message`` says why in words for the claimant."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass
class CodeOutcome:
    claimed: bool
    message: str


def mask_email(email: str) -> str:
    """``jane@example.org`` -> ``j•••@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def normalise_licence(number: str) -> str:
    """Licence numbers compare without spaces, dashes or case: "ch-1234" matches "CH 1234"."""
    return re.sub(r"[^0-9A-Za-z]", "", number).upper()


def licence_matches(practitioner: Practitioner, *, number: str, state: str) -> bool:
    wanted = normalise_licence(number)
    state = state.strip().upper()
    return bool(wanted) and any(
        normalise_licence(str(licence.get("number", ""))) == wanted
        and str(licence.get("state", "")).upper() == state
        for licence in practitioner.licences or []
    )


def _code_hash(claim: ListingClaim, code: str) -> str:
    return salted_hmac(
        "practitioners.claim-code",
        f"{claim.practitioner_id}:{claim.claimant_id}:{code}",
        algorithm="sha256",
    ).hexdigest()


def _refuse_unless_claimable(practitioner: Practitioner, claimant: User) -> None:
    if practitioner.status != Practitioner.Status.PUBLISHED:
        raise ClaimRefused("Only a published listing can be claimed.")
    if practitioner.claimed_by_id == claimant.pk:
        raise ClaimRefused("You already own this listing.")
    owned = Practitioner.objects.filter(claimed_by_id=claimant.pk).exclude(pk=practitioner.pk)
    if owned.exists():
        raise ClaimRefused(
            "Your account already owns a listing. Sign in with another account to claim this one."
        )


def _locked(practitioner: Practitioner) -> Practitioner:
    return Practitioner.objects.select_for_update().get(pk=practitioner.pk)


def _expire_open_claims(practitioner: Practitioner, claimant: User) -> None:
    ListingClaim.objects.filter(
        practitioner=practitioner, claimant_id=claimant.pk, status=ListingClaim.Status.AWAITING_CODE
    ).update(status=ListingClaim.Status.EXPIRED, decided_at=timezone.now())


def _make_owner(*, practitioner: Practitioner, owner: User, reason: str, by: User | None) -> None:
    practitioner.claimed_by = owner
    practitioner.claimed_at = timezone.now()
    _with_history_user(practitioner, by, reason)
    practitioner.save(update_fields=["claimed_by", "claimed_at", "updated_at"])


def _email_claimant(claim: ListingClaim, template: str, **context) -> None:
    email = claim.claimant.email
    if not email:
        return
    context = {"claim": claim, "practitioner": claim.practitioner, **context}
    notify.send_mail_later(
        subject=render_to_string(f"claims/email/{template}_subject.txt", context).strip(),
        body=render_to_string(f"claims/email/{template}_message.txt", context),
        to=[email],
    )


# --- 1. A code sent to the listing's e-mail ---------------------------------------------------


def start_email_claim(*, practitioner: Practitioner, claimant: User) -> ListingClaim:
    """Send a one-time code to the e-mail on file; the claim waits for it."""
    with transaction.atomic():
        practitioner = _locked(practitioner)
        _refuse_unless_claimable(practitioner, claimant)
        if practitioner.claimed_by_id is not None:
            raise ClaimRefused("This listing already has an owner: tell us why it is yours.")
        if not practitioner.email:
            raise ClaimRefused("This listing has no e-mail address on file.")
        _expire_open_claims(practitioner, claimant)
        code = f"{secrets.randbelow(1_000_000):06d}"
        claim = ListingClaim(
            practitioner=practitioner,
            claimant=claimant,
            method=ListingClaim.Method.EMAIL_CODE,
            status=ListingClaim.Status.AWAITING_CODE,
            code_sent_to=practitioner.email,
            code_expires_at=timezone.now()
            + dt.timedelta(minutes=settings.CLAIM_CODE_TIMEOUT_MINUTES),
        )
        claim.code_hash = _code_hash(claim, code)
        claim.save()
        context = {
            "practitioner": practitioner,
            "code": code,
            "minutes": settings.CLAIM_CODE_TIMEOUT_MINUTES,
            "claimant_email": claimant.email,
        }
        notify.send_mail_later(
            subject=render_to_string("claims/email/code_subject.txt", context).strip(),
            body=render_to_string("claims/email/code_message.txt", context),
            to=[practitioner.email],
        )
    return claim


def confirm_claim_code(*, claim: ListingClaim, claimant: User, code: str) -> CodeOutcome:
    """The claimant typed the code: right, in time and the first time, they own the listing."""
    with transaction.atomic():
        claim = (
            ListingClaim.objects.select_for_update(of=("self",))
            .select_related("practitioner")
            .get(pk=claim.pk)
        )
        if claim.claimant_id != claimant.pk or claim.method != ListingClaim.Method.EMAIL_CODE:
            raise ClaimRefused("This is not your claim.")
        if claim.status != ListingClaim.Status.AWAITING_CODE:
            return CodeOutcome(False, "This code has already been used or has expired.")
        if claim.code_expires_at is None or claim.code_expires_at < timezone.now():
            claim.status = ListingClaim.Status.EXPIRED
            claim.decided_at = timezone.now()
            claim.save(update_fields=["status", "decided_at"])
            return CodeOutcome(False, "This code has expired. Ask for a new one.")
        if not constant_time_compare(_code_hash(claim, code.strip()), claim.code_hash):
            claim.code_attempts += 1
            fields = ["code_attempts"]
            if claim.code_attempts >= settings.CLAIM_CODE_MAX_ATTEMPTS:
                claim.status = ListingClaim.Status.EXPIRED
                claim.decided_at = timezone.now()
                fields += ["status", "decided_at"]
                claim.save(update_fields=fields)
                return CodeOutcome(False, "Too many wrong codes. Ask for a new one.")
            claim.save(update_fields=fields)
            return CodeOutcome(False, "That code is not right. Check the e-mail and try again.")
        practitioner = _locked(claim.practitioner)
        if practitioner.claimed_by_id is not None and practitioner.claimed_by_id != claimant.pk:
            # Someone else won the race: the code proves nothing about a listing now owned.
            claim.status = ListingClaim.Status.DISPUTE
            claim.save(update_fields=["status"])
            return CodeOutcome(False, "This listing was claimed meanwhile; staff will look.")
        _refuse_unless_claimable(practitioner, claimant)
        claim.status = ListingClaim.Status.APPROVED
        claim.decided_at = timezone.now()
        claim.code_hash = ""
        claim.save(update_fields=["status", "decided_at", "code_hash"])
        _make_owner(
            practitioner=practitioner,
            owner=claimant,
            reason=f"{OWNER}: claimed with the code sent to {mask_email(claim.code_sent_to)}",
            by=claimant,
        )
    return CodeOutcome(True, "This listing is now yours.")


# --- 2. NPI and licence -----------------------------------------------------------------------


def claim_by_licence(
    *,
    practitioner: Practitioner,
    claimant: User,
    npi: str,
    licence_number: str,
    licence_state: str,
    message: str = "",
) -> ListingClaim:
    """A claim for staff: "licence matches" when the NPI is the listing's and the licence is one
    the registry lists for it, else "needs checking"."""
    from allauth.account.models import EmailAddress

    if not EmailAddress.objects.filter(user_id=claimant.pk, verified=True).exists():
        raise ClaimRefused("Verify your e-mail address before you claim a listing.")
    with transaction.atomic():
        practitioner = _locked(practitioner)
        _refuse_unless_claimable(practitioner, claimant)
        if practitioner.claimed_by_id is not None:
            raise ClaimRefused("This listing already has an owner: tell us why it is yours.")
        npi = npi.strip()
        matches = (
            bool(practitioner.npi)
            and npi == practitioner.npi
            and licence_matches(practitioner, number=licence_number, state=licence_state)
        )
        return ListingClaim.objects.create(
            practitioner=practitioner,
            claimant=claimant,
            method=ListingClaim.Method.LICENCE,
            status=ListingClaim.Status.LICENCE_MATCHES
            if matches
            else ListingClaim.Status.NEEDS_CHECKING,
            npi=npi,
            licence_number=licence_number.strip()[:40],
            licence_state=licence_state.strip().upper()[:2],
            message=message.strip()[:2000],
        )


def dispute_claim(*, practitioner: Practitioner, claimant: User, message: str) -> ListingClaim:
    """The listing has an owner and someone else says it is theirs: staff decide; nothing
    changes hands until they do."""
    with transaction.atomic():
        practitioner = _locked(practitioner)
        if practitioner.claimed_by_id is None:
            raise ClaimRefused("This listing has no owner yet: claim it instead.")
        _refuse_unless_claimable(practitioner, claimant)
        return ListingClaim.objects.create(
            practitioner=practitioner,
            claimant=claimant,
            method=ListingClaim.Method.DISPUTE,
            status=ListingClaim.Status.DISPUTE,
            message=message.strip()[:2000],
        )


# --- 3. Staff decide --------------------------------------------------------------------------


def approve_claim(*, claim: ListingClaim, user: User, reason: str = "") -> None:
    """Staff say the claimant is the practitioner: they own the listing (a dispute hands it
    over, recorded in the history), and they are e-mailed."""
    with transaction.atomic():
        claim = ListingClaim.objects.select_for_update().get(pk=claim.pk)
        if claim.status not in (*ListingClaim.OPEN_FOR_STAFF, ListingClaim.Status.DISPUTE):
            raise ClaimRefused(f"This claim is {claim.get_status_display().lower()} already.")
        practitioner = _locked(claim.practitioner)
        elsewhere = Practitioner.objects.filter(claimed_by_id=claim.claimant_id).exclude(
            pk=practitioner.pk
        )
        if elsewhere.exists():
            raise ClaimRefused("The claimant already owns another listing.")
        previous = practitioner.claimed_by
        claim.status = ListingClaim.Status.APPROVED
        claim.decided_by = user
        claim.decided_at = timezone.now()
        claim.decision_reason = reason.strip()[:500]
        claim.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        what = f"Claim by {claim.claimant.email or claim.claimant} approved"
        if previous is not None:
            what += f" (taken from {previous.email or previous})"
        _make_owner(practitioner=practitioner, owner=claim.claimant, reason=what, by=user)
        # Other open claims on the listing lose: the listing has its owner now.
        ListingClaim.objects.filter(
            practitioner=practitioner, status=ListingClaim.Status.AWAITING_CODE
        ).update(status=ListingClaim.Status.EXPIRED, decided_at=timezone.now())
        claim.practitioner = practitioner
        _email_claimant(claim, "approved")


def reject_claim(*, claim: ListingClaim, user: User, reason: str) -> None:
    """Staff say no, and why; the claimant is told the reason."""
    reason = reason.strip()[:500]
    if not reason:
        raise ClaimRefused("Say why the claim is rejected: the claimant is told.")
    with transaction.atomic():
        claim = (
            ListingClaim.objects.select_for_update(of=("self",))
            .select_related("practitioner")
            .get(pk=claim.pk)
        )
        if claim.status not in (*ListingClaim.OPEN_FOR_STAFF, ListingClaim.Status.DISPUTE):
            raise ClaimRefused(f"This claim is {claim.get_status_display().lower()} already.")
        claim.status = ListingClaim.Status.REJECTED
        claim.decided_by = user
        claim.decided_at = timezone.now()
        claim.decision_reason = reason
        claim.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        _email_claimant(claim, "rejected")


def open_claim_for(*, practitioner: Practitioner, claimant: User) -> ListingClaim | None:
    """The claimant's claim on this listing that is still under way, if any."""
    return (
        ListingClaim.objects.filter(practitioner=practitioner, claimant_id=claimant.pk)
        .exclude(
            status__in=[
                ListingClaim.Status.APPROVED,
                ListingClaim.Status.REJECTED,
                ListingClaim.Status.EXPIRED,
            ]
        )
        .order_by("-created_at")
        .first()
    )
