"""Claiming a listing: "Is this you? Claim this listing" on every published profile; a code sent
to the listing's e-mail (masked on the page, works once, expires); the NPI + licence path into
the staff queue; staff approve or reject with a reason (the claimant is e-mailed); one owner per
listing, a claim on an owned listing is a dispute; every step in the listing's history; claim
attempts rate limited per account and per IP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from practitioners.curation import claims
from practitioners.curation.history import listing_timeline
from practitioners.models import ListingClaim, Practitioner
from tests.browsing import follow, form, local_path, submit, text_of
from tests.factories import practitioner_at

pytestmark = pytest.mark.django_db

NPI = "1234567893"  # a valid check digit
REGISTRY_NPI = "1987654328"


def account(email: str, *, verified: bool = True, **fields):
    user = get_user_model().objects.create_user(email, email, "a-long-passphrase-42", **fields)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user


def signed_in(user) -> Client:
    client = Client(REMOTE_ADDR="198.51.100.7")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def listing():
    return practitioner_at(
        35.11,
        -89.90,
        name="Jane Doe",
        slug="jane-doe-memphis",
        email="jane.doe@example.org",
        npi=NPI,
        licences=[{"number": "CH-1234", "state": "TN"}],
    )


@pytest.fixture
def registry_listing():
    """An NPI-registry listing: no e-mail on file."""
    return practitioner_at(
        35.11,
        -89.90,
        name="Sam Roe",
        slug="sam-roe-memphis",
        npi=REGISTRY_NPI,
        licences=[{"number": "PT 5555", "state": "TN"}],
    )


@pytest.fixture
def jane():
    return account("jane@clinic.example")


def claim_page(client: Client, listing: Practitioner):
    profile = client.get(listing.get_absolute_url())
    assert profile.status_code == 200
    return follow(client, profile, text="Is this you? Claim this listing")


def code_from(message) -> str:
    found = re.search(r"^\s+(\d{6})\s*$", message.body, re.MULTILINE)
    assert found, message.body
    return found.group(1)


def send_code(client, listing, capture):
    page = claim_page(client, listing)
    with capture(execute=True):
        sent = submit(client, form(page, "#code-form"))
    assert sent.status_code == 302
    return client.get(local_path(sent["Location"]))


def test_signing_in_is_asked_first_and_brings_the_claimant_back(listing):
    client = Client()
    page = claim_page(client, listing)
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/")
    assert "next=/practitioners/jane-doe-memphis/claim/" in page["Location"]


def test_the_code_goes_to_the_listing_email_shown_masked_and_claims_at_once(
    listing, jane, django_capture_on_commit_callbacks
):
    client = signed_in(jane)
    page = claim_page(client, listing)
    assert "j•••@example.org" in text_of(page, "#code-form")
    assert "jane.doe@example.org" not in page.content.decode()

    code_page = send_code(client, listing, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["jane.doe@example.org"]
    assert "claim" in message.subject.lower()
    assert "jane@clinic.example" in message.body  # who asked, so a stranger's request is seen
    code = code_from(message)
    assert "j•••@example.org" in text_of(code_page, "main")

    done = submit(client, form(code_page, "#claim-code-form").set("code", code))
    assert done.status_code == 302
    dashboard = client.get(local_path(done["Location"]))
    assert "Jane Doe" in text_of(dashboard, "main")
    listing.refresh_from_db()
    assert listing.claimed_by == jane

    timeline = listing_timeline(listing.pk)
    reasons = " | ".join(f"{entry.author}: {entry.reason}" for entry in timeline)
    assert "claimed with the code sent to j•••@example.org" in reasons
    assert "Asked for a code at the listing's e-mail (j•••@example.org)" in reasons
    assert "jane@clinic.example: the right code was entered" in reasons


def test_a_code_works_once(listing, jane, django_capture_on_commit_callbacks):
    client = signed_in(jane)
    code_page = send_code(client, listing, django_capture_on_commit_callbacks)
    code = code_from(mail.outbox[0])
    submit(client, form(code_page, "#claim-code-form").set("code", code))
    claim = ListingClaim.objects.get()
    assert claim.status == ListingClaim.Status.APPROVED
    # The same code again, on the spent claim: refused, nothing changes.
    outcome = claims.confirm_claim_code(claim=claim, claimant=jane, code=code)
    assert not outcome.claimed
    assert "already been used" in outcome.message


def test_an_expired_code_claims_nothing(listing, jane, django_capture_on_commit_callbacks):
    client = signed_in(jane)
    code_page = send_code(client, listing, django_capture_on_commit_callbacks)
    code = code_from(mail.outbox[0])
    ListingClaim.objects.update(code_expires_at=timezone.now() - dt.timedelta(seconds=1))
    answer = submit(client, form(code_page, "#claim-code-form").set("code", code))
    assert answer.status_code == 400
    assert "expired" in text_of(answer, "main")
    listing.refresh_from_db()
    assert listing.claimed_by is None


def test_wrong_codes_use_up_the_claim(listing, jane, settings, django_capture_on_commit_callbacks):
    settings.CLAIM_CODE_MAX_ATTEMPTS = 3
    client = signed_in(jane)
    code_page = send_code(client, listing, django_capture_on_commit_callbacks)
    code = code_from(mail.outbox[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        answer = submit(client, form(code_page, "#claim-code-form").set("code", wrong))
    assert answer.status_code in (302, 400)
    # The right code now comes too late.
    claim = ListingClaim.objects.get()
    assert claim.status == ListingClaim.Status.EXPIRED
    assert not claims.confirm_claim_code(claim=claim, claimant=jane, code=code).claimed
    listing.refresh_from_db()
    assert listing.claimed_by is None


def test_another_account_cannot_use_someone_elses_code(
    listing, jane, django_capture_on_commit_callbacks
):
    client = signed_in(jane)
    send_code(client, listing, django_capture_on_commit_callbacks)
    code = code_from(mail.outbox[0])
    mallory = account("mallory@example.net")
    other = signed_in(mallory)
    page = other.get(f"/practitioners/{listing.slug}/claim/code/")
    assert page.status_code == 302  # no code is waiting for Mallory
    with pytest.raises(claims.ClaimRefused):
        claims.confirm_claim_code(claim=ListingClaim.objects.get(), claimant=mallory, code=code)
    listing.refresh_from_db()
    assert listing.claimed_by is None


def test_a_matching_npi_and_licence_lands_in_the_staff_queue_as_licence_matches(
    registry_listing, jane
):
    client = signed_in(jane)
    page = claim_page(client, registry_listing)
    assert "code-form" not in page.content.decode()  # no e-mail on file: no code path
    filled = (
        form(page, "#licence-form")
        .set("npi", REGISTRY_NPI)
        .set("licence_number", "pt-5555")
        .set("licence_state", "tn")
    )
    answer = submit(client, filled)
    assert answer.status_code == 302
    after = client.get(local_path(answer["Location"]))
    assert "staff will check your claim" in text_of(after, "main")
    claim = ListingClaim.objects.get()
    assert claim.status == ListingClaim.Status.LICENCE_MATCHES
    registry_listing.refresh_from_db()
    assert registry_listing.claimed_by is None  # staff decide


def test_a_licence_that_does_not_match_needs_checking(registry_listing, jane):
    client = signed_in(jane)
    page = claim_page(client, registry_listing)
    filled = (
        form(page, "#licence-form")
        .set("npi", REGISTRY_NPI)
        .set("licence_number", "PT 9999")
        .set("licence_state", "TN")
    )
    submit(client, filled)
    assert ListingClaim.objects.get().status == ListingClaim.Status.NEEDS_CHECKING


def test_a_malformed_npi_or_state_is_a_400_with_the_form_kept(registry_listing, jane):
    client = signed_in(jane)
    page = claim_page(client, registry_listing)
    filled = (
        form(page, "#licence-form")
        .set("npi", "123")
        .set("licence_number", "PT 5555")
        .set("licence_state", "Tennessee")
    )
    answer = submit(client, filled)
    assert answer.status_code == 400
    assert "not a valid NPI" in text_of(answer, "#licence-form")
    assert form(answer, "#licence-form").value("licence_number") == "PT 5555"
    assert not ListingClaim.objects.exists()


def test_an_unverified_address_cannot_claim_by_licence(registry_listing):
    unverified = account("new@example.org", verified=False)
    with pytest.raises(claims.ClaimRefused, match="Verify your e-mail"):
        claims.claim_by_licence(
            practitioner=registry_listing,
            claimant=unverified,
            npi=REGISTRY_NPI,
            licence_number="PT 5555",
            licence_state="TN",
        )


def staff_client():
    staff = get_user_model().objects.create_superuser("curator", "curator@example.org", "pw")
    client = Client()
    client.force_login(staff)
    return client, staff


def test_staff_approve_a_claim_and_the_claimant_is_emailed(
    registry_listing, jane, django_capture_on_commit_callbacks
):
    claims.claim_by_licence(
        practitioner=registry_listing,
        claimant=jane,
        npi=REGISTRY_NPI,
        licence_number="PT 5555",
        licence_state="TN",
    )
    client, _ = staff_client()
    queue = client.get("/admin/practitioners/listingclaim/?queue=review")
    assert "Sam Roe" in text_of(queue, "#result_list")
    assert "Licence matches" in text_of(queue, "#result_list")
    claim = ListingClaim.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            "/admin/practitioners/listingclaim/",
            {"action": "approve_selected", "_selected_action": [claim.pk]},
        )
    assert answer.status_code == 302
    registry_listing.refresh_from_db()
    assert registry_listing.claimed_by == jane
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["jane@clinic.example"]
    assert "approved" in mail.outbox[0].subject
    reasons = [entry.reason for entry in listing_timeline(registry_listing.pk)]
    assert any("Claim by jane@clinic.example approved" in reason for reason in reasons)


def test_staff_reject_with_a_reason_the_claimant_is_sent(
    registry_listing, jane, django_capture_on_commit_callbacks
):
    claims.claim_by_licence(
        practitioner=registry_listing,
        claimant=jane,
        npi=REGISTRY_NPI,
        licence_number="PT 9999",
        licence_state="TN",
    )
    client, _ = staff_client()
    claim = ListingClaim.objects.get()
    ask = client.post(
        "/admin/practitioners/listingclaim/",
        {"action": "reject_selected", "_selected_action": [claim.pk]},
    )
    assert ask.status_code == 200
    filled = form(ask, "#content form").set("text", "The licence is not in the NPI registry")
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, filled)
    claim.refresh_from_db()
    assert claim.status == ListingClaim.Status.REJECTED
    assert mail.outbox[0].to == ["jane@clinic.example"]
    assert "The licence is not in the NPI registry" in mail.outbox[0].body
    registry_listing.refresh_from_db()
    assert registry_listing.claimed_by is None
    timeline = listing_timeline(registry_listing.pk)
    assert any(
        entry.kind == "rejected" and "not in the NPI registry" in entry.reason for entry in timeline
    )


def test_a_claim_on_an_owned_listing_is_a_dispute_and_never_transfers_silently(
    listing, jane, django_capture_on_commit_callbacks
):
    Practitioner.objects.filter(pk=listing.pk).update(claimed_by=jane)
    rival = account("rival@example.net")
    client = signed_in(rival)
    page = claim_page(client, listing)
    assert "already has an owner" in text_of(page, "main")
    assert "code-form" not in page.content.decode()
    with pytest.raises(claims.ClaimRefused):
        claims.start_email_claim(practitioner=listing, claimant=rival)
    filled = form(page, "#dispute-form").set("message", "I bought this practice in May.")
    answer = submit(client, filled)
    assert answer.status_code == 302
    claim = ListingClaim.objects.get()
    assert claim.status == ListingClaim.Status.DISPUTE
    listing.refresh_from_db()
    assert listing.claimed_by == jane

    staff, _ = staff_client()
    disputes = staff.get("/admin/practitioners/listingclaim/?queue=dispute")
    assert "rival@example.net" in text_of(disputes, "#result_list")


def test_an_account_owns_at_most_one_listing(listing, registry_listing, jane):
    Practitioner.objects.filter(pk=listing.pk).update(claimed_by=jane)
    with pytest.raises(claims.ClaimRefused, match="already owns a listing"):
        claims.claim_by_licence(
            practitioner=registry_listing,
            claimant=jane,
            npi=REGISTRY_NPI,
            licence_number="PT 5555",
            licence_state="TN",
        )


def test_unpublished_listings_cannot_be_claimed(listing, jane):
    Practitioner.objects.filter(pk=listing.pk).update(status=Practitioner.Status.SUSPENDED)
    client = signed_in(jane)
    assert client.get(f"/practitioners/{listing.slug}/claim/").status_code == 404
    assert (
        client.post(f"/practitioners/{listing.slug}/claim/", {"action": "send_code"}).status_code
        == 404
    )


def test_claim_attempts_are_rate_limited_per_account(registry_listing, jane, settings):
    settings.CLAIM_RATE_LIMIT = 3
    data = {"action": "licence", "npi": "123", "licence_number": "x", "licence_state": "TN"}
    for n in range(3):
        # A new address each time: the account's count still adds up.
        client = Client(REMOTE_ADDR=f"203.0.113.{n + 1}")
        client.force_login(jane, backend="django.contrib.auth.backends.ModelBackend")
        assert (
            client.post(f"/practitioners/{registry_listing.slug}/claim/", data).status_code == 400
        )
    client = Client(REMOTE_ADDR="203.0.113.99")
    client.force_login(jane, backend="django.contrib.auth.backends.ModelBackend")
    limited = client.post(f"/practitioners/{registry_listing.slug}/claim/", data)
    assert limited.status_code == 429
    assert "Too many attempts" in text_of(limited, "main")
    assert limited["Retry-After"]


def test_claim_attempts_are_rate_limited_per_address(registry_listing, settings):
    settings.CLAIM_RATE_LIMIT = 3
    data = {"action": "licence", "npi": "123", "licence_number": "x", "licence_state": "TN"}
    answers = []
    for n in range(4):
        user = account(f"user{n}@example.org")
        client = Client(REMOTE_ADDR="192.0.2.50")
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        answers.append(
            client.post(f"/practitioners/{registry_listing.slug}/claim/", data).status_code
        )
    assert answers == [400, 400, 400, 429]


def test_the_nppes_import_stores_each_taxonomy_slots_licence_and_a_claim_matches_it():
    from pathlib import Path

    from practitioners.ingest.nppes import import_nppes

    fixtures = Path(__file__).parent / "fixtures" / "nppes"
    with (fixtures / "npidata_pfile_month1.csv").open("rb") as stream:
        import_nppes(stream=stream, status=Practitioner.Status.PUBLISHED)
    listing = Practitioner.objects.exclude(licences=[]).order_by("pk").first()
    assert listing is not None
    licence = listing.licences[0]
    assert licence["number"].startswith("LIC1") and len(licence["state"]) == 2
    claimant = account("registry@example.org")
    claim = claims.claim_by_licence(
        practitioner=listing,
        claimant=claimant,
        npi=listing.npi,
        licence_number=licence["number"].lower(),
        licence_state=licence["state"],
    )
    assert claim.status == ListingClaim.Status.LICENCE_MATCHES
