"""The 90-day rhythm: a daily command e-mails owners whose confirmation is 90 days old a signed
link (expires after 14 days, works once) that confirms without signing in; never twice for one
due date. A listing neither confirmed by its owner nor verified by staff within
LISTING_STALE_AFTER_DAYS shows "This listing may be out of date" and joins the staff queue; the
admin home counts every queue."""

from __future__ import annotations

import datetime as dt
import re
import time
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from practitioners import curation
from practitioners.curation import claims, owners
from practitioners.models import (
    CertificationEvidence,
    ConfirmationReminder,
    ListingClaim,
    OwnerRequest,
    Practitioner,
)
from tests.browsing import follow, form, local_path, soup, submit, text_of
from tests.factories import certification, practitioner_at

pytestmark = pytest.mark.django_db


def owned_listing(*, confirmed_days_ago: int | None, email: str = "jane@clinic.example"):
    listing = practitioner_at(35.11, -89.90, name="Jane Doe", slug=f"jane-{email[:4]}")
    user = get_user_model().objects.create_user(email, email, "a-long-passphrase-42")
    today = timezone.localdate()
    Practitioner.objects.filter(pk=listing.pk).update(
        claimed_by=user,
        claimed_at=timezone.now() - dt.timedelta(days=confirmed_days_ago or 0),
        owner_confirmed_on=None
        if confirmed_days_ago is None
        else today - dt.timedelta(days=confirmed_days_ago),
    )
    listing.refresh_from_db()
    return listing


def run(*args: str) -> str:
    out = StringIO()
    call_command("send_confirmation_reminders", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def link_in(body: str) -> str:
    found = re.search(r"(https?://\S+/my-listing/confirm/\S+/)", body)
    assert found, body
    return local_path(found.group(1).replace("http://127.0.0.1:8000", "http://testserver"))


def test_owners_confirmed_90_days_ago_are_emailed_once_per_due_date(
    django_capture_on_commit_callbacks,
):
    due = owned_listing(confirmed_days_ago=90)
    owned_listing(confirmed_days_ago=89, email="fresh@clinic.example")
    with django_capture_on_commit_callbacks(execute=True):
        summary = run()
    assert "1 reminder(s) sent" in summary
    assert [m.to for m in mail.outbox] == [["jane@clinic.example"]]
    message = mail.outbox[0]
    assert "still accurate" in message.subject
    assert "/my-listing/" in message.body and "14 days" in message.body
    assert ConfirmationReminder.objects.get().practitioner == due
    # Tomorrow's run (and a second run today) e-mail no one for the same due date.
    with django_capture_on_commit_callbacks(execute=True):
        again = run()
    assert "0 reminder(s) sent" in again
    assert len(mail.outbox) == 1


def test_a_dry_run_lists_the_owners_and_sends_nothing():
    owned_listing(confirmed_days_ago=120)
    summary = run("--dry-run")
    assert "jane@clinic.example" in summary
    assert "1 owner(s) would be reminded" in summary
    assert not ConfirmationReminder.objects.exists()
    assert mail.outbox == []


def test_the_link_confirms_without_signing_in_and_works_once(django_capture_on_commit_callbacks):
    listing = owned_listing(confirmed_days_ago=95)
    with django_capture_on_commit_callbacks(execute=True):
        run()
    url = link_in(mail.outbox[0].body)
    client = Client()
    page = client.get(url)
    assert page.status_code == 200
    listing.refresh_from_db()
    assert listing.owner_confirmed_on != timezone.localdate()  # opening the link is not enough
    done = submit(client, form(page, "#confirm-link-form"))
    assert done.status_code == 200
    assert "now shows it was confirmed" in text_of(done, "#link-confirmed")
    listing.refresh_from_db()
    assert listing.owner_confirmed_on == timezone.localdate()
    assert listing.last_confirmed_on == timezone.localdate()
    profile = Client().get(listing.get_absolute_url())
    assert "Confirmed by the practitioner" in text_of(profile, "#owner-confirmed")

    again = client.post(url)
    assert again.status_code == 400
    assert "used already" in text_of(again, "#link-problem")


def test_the_link_expires_after_14_days(django_capture_on_commit_callbacks):
    listing = owned_listing(confirmed_days_ago=100)
    with django_capture_on_commit_callbacks(execute=True):
        run()
    url = link_in(mail.outbox[0].body)
    fifteen_days_later = time.time() + 15 * 86400
    with mock.patch("django.core.signing.time.time", return_value=fifteen_days_later):
        expired = Client().post(url)
    assert expired.status_code == 400
    assert "expired" in text_of(expired, "#link-problem")
    listing.refresh_from_db()
    assert listing.owner_confirmed_on != timezone.localdate()


def test_a_forged_link_is_refused():
    owned_listing(confirmed_days_ago=100)
    forged = Client().post("/my-listing/confirm/1:forged:signature/")
    assert forged.status_code == 400
    assert "not valid" in text_of(forged, "#link-problem")


def test_a_listing_not_confirmed_for_180_days_may_be_out_of_date(settings):
    settings.LISTING_STALE_AFTER_DAYS = 180
    old = practitioner_at(
        35.11, -89.90, name="Old Listing", slug="old-listing", certifications=["art"]
    )
    fresh = practitioner_at(35.11, -89.90, name="Fresh Listing", slug="fresh-listing")
    long_ago = timezone.now() - dt.timedelta(days=200)
    Practitioner.objects.filter(pk__in=[old.pk, fresh.pk]).update(created_at=long_ago)
    Practitioner.objects.filter(pk=fresh.pk).update(last_confirmed_on=timezone.localdate())
    page = Client().get(old.get_absolute_url())
    assert "This listing may be out of date" in text_of(page, "#may-be-out-of-date")
    assert "may be out of date" not in text_of(Client().get(fresh.get_absolute_url()), "main")
    assert list(curation.queues.stale_listings()) == [old]

    # Staff verifying its certificates counts as checking it.
    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=old.pk), source="ART directory", user=staff
    )
    assert "may be out of date" not in text_of(Client().get(old.get_absolute_url()), "main")
    assert list(curation.queues.stale_listings()) == []


def test_the_admin_home_counts_every_owner_queue(django_capture_on_commit_callbacks):
    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    listing = owned_listing(confirmed_days_ago=10)
    owner = listing.claimed_by
    registry = practitioner_at(35.11, -89.90, slug="registry", npi="1987654328")
    claimant = get_user_model().objects.create_user("c@x.org", "c@x.org", "pw")
    ListingClaim.objects.create(
        practitioner=registry, claimant=claimant, method="licence", status="licence_matches"
    )
    rival = get_user_model().objects.create_user("r@x.org", "r@x.org", "pw")
    claims.dispute_claim(practitioner=listing, claimant=rival, message="Mine")
    owners.request_change(practitioner=listing, owner=owner, field="name", value="New")
    owners.request_hide(practitioner=listing, owner=owner)
    CertificationEvidence.objects.create(
        practitioner=listing,
        certification=certification("art"),
        token="t",
        file="x.pdf",
        content_type="application/pdf",
        size=1,
        original_name="x.pdf",
    )
    Practitioner.objects.filter(pk=registry.pk).update(
        created_at=timezone.now() - dt.timedelta(days=400)
    )
    client = Client()
    client.force_login(staff)
    index = client.get("/admin/")
    rows = {
        " ".join(tr.select_one("th").get_text(" ").split()): tr.select_one("td").get_text(
            strip=True
        )
        for tr in soup(index).select("#curation-dashboard tr")
    }
    assert rows["Claims to review"] == "1"
    assert rows["Disputed listings"] == "1"
    assert rows["Certificate evidence to review"] == "1"
    assert rows["Owners' change requests"] == "1"
    assert rows["Requests to hide a listing"] == "1"
    stale_row = next(label for label in rows if label.startswith("Listings that may be out"))
    assert rows[stale_row] == "1"
    assert OwnerRequest.objects.count() == 2
    # Each count links to its queue, and the queue lists what was counted.
    claims_queue = follow(client, index, text="Claims to review")
    assert "c@x.org" in text_of(claims_queue, "#result_list")
    stale_queue = follow(client, index, text="Listings that may be out of date")
    assert registry.name in text_of(stale_queue, "#result_list")
    assert listing.name not in text_of(stale_queue, "#result_list")
