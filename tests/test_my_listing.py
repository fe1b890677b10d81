"""The owner's dashboard at /my-listing/: edits are live and in the history with the owner as
author (staff can revert them); registry fields go to staff as change requests; clinics are
added, moved and closed (at their ZIP centroid until geocoded); certifications come with
evidence (PDF/JPEG/PNG up to 5 MB, type from content, private, shown only to staff) and show as
"self-reported" until staff verify or reject them; "My listing is still accurate"; asking to
hide the listing. Another owner's session, or another listing's ids, change nothing."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from practitioners.curation import owners
from practitioners.curation.history import listing_timeline
from practitioners.models import (
    CertificationEvidence,
    Location,
    OwnerRequest,
    Practitioner,
    PractitionerCertification,
)
from tests.browsing import follow, form, submit, text_of
from tests.factories import LocationFactory, certification, practitioner_at

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    return settings.EVIDENCE_ROOT


def owner_of(listing: Practitioner, email: str):
    user = get_user_model().objects.create_user(email, email, "a-long-passphrase-42")
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    Practitioner.objects.filter(pk=listing.pk).update(claimed_by=user, claimed_at=timezone.now())
    listing.refresh_from_db()
    return user


def session(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def listing():
    return practitioner_at(
        35.11, -89.90, name="Jane Doe", slug="jane-doe-memphis", bio="Old bio", npi="1234567893"
    )


@pytest.fixture
def jane(listing):
    return owner_of(listing, "jane@clinic.example")


@pytest.fixture
def other_listing():
    return practitioner_at(35.2, -89.8, name="Other Person", slug="other-person", bio="Theirs")


@pytest.fixture
def other_owner(other_listing):
    return owner_of(other_listing, "other@clinic.example")


def dashboard(client: Client):
    page = client.get("/my-listing/")
    assert page.status_code == 200
    return page


def test_the_owner_edits_details_live_and_the_history_names_them(listing, jane):
    client = session(jane)
    page = dashboard(client)
    filled = (
        form(page, "#details-form")
        .set("bio", "Sports chiropractic since 2010.")
        .set("website", "https://jane.example.org")
        .set("telehealth", "on")
    )
    saved = submit(client, filled)
    assert saved.status_code == 302
    profile = Client().get(listing.get_absolute_url())
    assert "Sports chiropractic since 2010." in text_of(profile, ".bio")
    assert "Offers telehealth" in text_of(profile, ".facts")
    edit = next(e for e in listing_timeline(listing.pk) if e.reason.startswith("Owner: edited"))
    assert edit.author == "jane@clinic.example"
    assert {c.field for c in edit.changes} >= {"bio", "website", "telehealth"}


def test_staff_can_revert_an_owner_edit(listing, jane):
    session(jane).post(
        "/my-listing/",
        {
            "bio": "Vandalised",
            "phone": "",
            "website": "",
            "email": "",
            "new_patients": "accepting",
        },
    )
    listing.refresh_from_db()
    assert listing.bio == "Vandalised"
    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    admin = Client()
    admin.force_login(staff)
    history = admin.get(f"/admin/practitioners/practitioner/{listing.pk}/history/")
    before = [
        e for e in listing_timeline(listing.pk) if e.history_id and not e.reason.startswith("Owner")
    ]
    version = before[0]
    revert_page = admin.get(
        f"/admin/practitioners/practitioner/{listing.pk}/history/{version.history_id}/"
    )
    assert revert_page.status_code == 200
    assert history.status_code == 200
    reverted = submit(admin, form(revert_page, "#historicalpractitioner_form"))
    assert reverted.status_code == 302, text_of(reverted, ".errornote")
    listing.refresh_from_db()
    assert listing.bio == "Old bio"


def test_registry_fields_are_not_the_owners_to_change_but_a_request_to_staff(listing, jane):
    client = session(jane)
    # A forged field in the details form changes nothing.
    client.post(
        "/my-listing/",
        {
            "name": "Dr Someone Else",
            "npi": "1987654328",
            "bio": "x",
            "new_patients": "accepting",
        },
    )
    listing.refresh_from_db()
    assert (listing.name, listing.npi) == ("Jane Doe", "1234567893")
    page = dashboard(client)
    filled = (
        form(page, "#change-form")
        .set("field", "name")
        .set("value", "Jane A. Doe")
        .set("note", "Married name")
    )
    assert submit(client, filled).status_code == 302
    request = OwnerRequest.objects.get()
    assert (request.kind, request.field, request.value) == ("change", "name", "Jane A. Doe")
    assert "Jane A. Doe" in text_of(dashboard(client), "#open-requests")
    listing.refresh_from_db()
    assert listing.name == "Jane Doe"


def test_adding_a_clinic_puts_it_at_its_zip_centroid_and_geocodes_it_in_the_background(
    listing, jane, django_capture_on_commit_callbacks
):
    client = session(jane)
    add = follow(client, dashboard(client), text="Add a clinic")
    filled = (
        form(add, "#clinic-form")
        .set("address_line1", "1 Main St")
        .set("city", "Germantown")
        .set("state", "tn")
        .set("postal_code", "38138")
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        saved = submit(client, filled)
    assert saved.status_code == 302
    assert callbacks, "the geocoding task is enqueued after the commit"
    clinic = Location.objects.get(practitioner=listing, postal_code="38138")
    assert clinic.latitude is not None and clinic.source == "owner"
    profile = Client().get(listing.get_absolute_url())
    assert "1 Main St" in text_of(profile, ".locations")


def test_moving_and_closing_a_clinic(listing, jane):
    second = LocationFactory(practitioner=listing, address_line1="9 Old Rd")
    client = session(jane)
    edit = client.get(f"/my-listing/clinics/{second.pk}/")
    filled = (
        form(edit, "#clinic-form").set("address_line1", "10 New Rd").set("postal_code", "38104")
    )
    assert submit(client, filled).status_code == 302
    second.refresh_from_db()
    assert (second.address_line1, second.postal_code) == ("10 New Rd", "38104")
    assert second.is_approximate  # at the new ZIP's centroid until the task places it

    page = dashboard(client)
    close = form(page, f"#clinic-{second.pk} form")
    assert submit(client, close).status_code == 302
    assert not Location.objects.filter(pk=second.pk).exists()

    # The last clinic cannot be closed: a listing needs one.
    last = listing.locations.get()
    refused = client.post(f"/my-listing/clinics/{last.pk}/close/")
    assert refused.status_code == 400
    assert "at least one clinic" in text_of(refused, "#dashboard-problem")
    assert Location.objects.filter(pk=last.pk).exists()


def add_certification(client, *, content: bytes, name: str, cert: str = "art", **fields):
    data = {
        "certification": str(certification(cert).pk),
        "credential_number": "ART-77",
        "earned_on": "2024-03-01",
        "evidence": SimpleUploadedFile(name, content, content_type="application/pdf"),
        **fields,
    }
    return client.post("/my-listing/certifications/add/", data)


def test_a_certification_with_evidence_is_self_reported_until_staff_verify_it(
    listing, jane, evidence_root
):
    client = session(jane)
    assert add_certification(client, content=PDF, name="my-art.pdf").status_code == 302
    record = PractitionerCertification.objects.get(practitioner=listing)
    assert record.self_reported and record.verified_on is None
    evidence = CertificationEvidence.objects.get()
    assert evidence.content_type == "application/pdf"
    stored = Path(evidence.file.path)
    assert stored.is_file() and stored.read_bytes() == PDF
    assert str(stored).startswith(str(Path(evidence_root).resolve()))
    assert "my-art" not in stored.name  # never the name the owner gave
    with pytest.raises(ValueError):
        _ = evidence.file.url  # no public URL

    profile = Client().get(listing.get_absolute_url())
    assert "self-reported" in text_of(profile, ".certifications")
    # Self-reported certifications still match a certification search.
    found = Client().get("/search/?zip=38117&radius=25&certification=art")
    assert "Jane Doe" in text_of(found, "main")

    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    admin = Client()
    admin.force_login(staff)
    change = admin.get(f"/admin/practitioners/certificationevidence/{evidence.pk}/change/")
    opened = follow(admin, change, text="Open my-art.pdf")
    assert opened.status_code == 200
    assert opened["Content-Type"] == "application/pdf"
    assert b"".join(opened.streaming_content) == PDF
    admin.post(
        "/admin/practitioners/certificationevidence/",
        {"action": "verify_selected", "_selected_action": [evidence.pk]},
    )
    record.refresh_from_db()
    assert record.verified_on == timezone.localdate()
    assert record.verified_by == staff and record.verification_source == "certificate reviewed"
    profile = Client().get(listing.get_absolute_url())
    assert "verified" in text_of(profile, ".certifications")
    assert "self-reported" not in text_of(profile, ".certifications")


def test_rejected_evidence_takes_the_certification_off_and_the_owner_sees_why(
    listing, jane, django_capture_on_commit_callbacks
):
    client = session(jane)
    add_certification(client, content=PNG, name="scan.png", cert="graston")
    evidence = CertificationEvidence.objects.get()
    assert evidence.content_type == "image/png"
    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    with django_capture_on_commit_callbacks(execute=True):
        owners.reject_evidence(evidence=evidence, user=staff, reason="The name on it is not yours")
    assert not PractitionerCertification.objects.filter(practitioner=listing).exists()
    assert "The name on it is not yours" in text_of(dashboard(client), "#my-certifications")
    assert mail.outbox[-1].to == ["jane@clinic.example"]
    assert "The name on it is not yours" in mail.outbox[-1].body
    profile = Client().get(listing.get_absolute_url())
    assert "self-reported" not in text_of(profile, ".certifications")
    assert "No technique certification" in text_of(profile, ".certifications")


def test_evidence_is_shown_only_to_staff(listing, jane, other_owner):
    add_certification(session(jane), content=JPEG, name="photo.jpg")
    evidence = CertificationEvidence.objects.get()
    assert evidence.content_type == "image/jpeg"
    url = f"/admin/practitioners/certificationevidence/{evidence.pk}/file/"
    assert Client().get(url).status_code == 302  # to the admin sign-in
    assert session(jane).get(url).status_code == 302  # the owner is not staff
    assert session(other_owner).get(url).status_code == 302
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.org", "pw", is_staff=True)
    assert session(clerk).get(url).status_code == 403  # staff without the permission


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.pdf", "The file is empty"),
        (
            b"<!doctype html><html><script>alert(1)</script></html>",
            "cert.pdf",
            "not a PDF, JPEG or PNG",
        ),
        (None, "archive.pdf", "not a PDF, JPEG or PNG"),
        (b"%PDF-" + b"0" * (50 * 1024 * 1024), "huge.pdf", "larger than 5 MB"),
    ],
    ids=["empty", "html-named-pdf", "zip", "50-mb"],
)
def test_upload_abuse_gets_a_clear_message_and_stores_nothing(
    listing, jane, evidence_root, content, name, message
):
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("cert.pdf", PDF)
        content = buffer.getvalue()
    answer = add_certification(session(jane), content=content, name=name)
    assert answer.status_code == 400
    assert message in text_of(answer, "#certification-form")
    assert not CertificationEvidence.objects.exists()
    assert not PractitionerCertification.objects.filter(practitioner=listing).exists()
    root = Path(evidence_root)
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_my_listing_is_still_accurate(listing, jane):
    client = session(jane)
    page = dashboard(client)
    assert submit(client, form(page, "#confirm-form")).status_code == 302
    listing.refresh_from_db()
    assert listing.owner_confirmed_on == timezone.localdate()
    profile = Client().get(listing.get_absolute_url())
    month = timezone.localdate().strftime("%B %Y")
    assert f"Confirmed by the practitioner, {month}" in text_of(profile, "#owner-confirmed")


def test_asking_to_hide_the_listing_is_a_request_staff_decide(
    listing, jane, django_capture_on_commit_callbacks
):
    client = session(jane)
    page = dashboard(client)
    assert submit(client, form(page, "#hide-form").set("note", "Retired")).status_code == 302
    listing.refresh_from_db()
    assert listing.status == Practitioner.Status.PUBLISHED  # staff decide
    request = OwnerRequest.objects.get(kind="hide")
    staff = get_user_model().objects.create_superuser("curator", "c@example.org", "pw")
    with django_capture_on_commit_callbacks(execute=True):
        owners.resolve_requests(
            requests=OwnerRequest.objects.filter(pk=request.pk), user=staff, done=True, note="OK"
        )
    listing.refresh_from_db()
    assert listing.status == Practitioner.Status.SUSPENDED
    assert mail.outbox[-1].to == ["jane@clinic.example"]


def test_an_account_without_a_listing_is_pointed_to_the_search(db):
    user = get_user_model().objects.create_user("nobody@example.org", "nobody@example.org", "pw")
    page = session(user).get("/my-listing/")
    assert page.status_code == 200
    assert "does not own a listing" in text_of(page, "main")
    for url in (
        "/my-listing/confirm/",
        "/my-listing/clinics/add/",
        "/my-listing/requests/hide/",
        "/my-listing/requests/change/",
        "/my-listing/certifications/add/",
    ):
        assert session(user).post(url, {}).status_code == 404, url


def test_signing_in_is_required_for_every_dashboard_url(listing):
    clinic = listing.locations.get()
    for url in (
        "/my-listing/",
        "/my-listing/confirm/",
        "/my-listing/clinics/add/",
        f"/my-listing/clinics/{clinic.pk}/",
        f"/my-listing/clinics/{clinic.pk}/close/",
        "/my-listing/certifications/add/",
        "/my-listing/requests/change/",
        "/my-listing/requests/hide/",
    ):
        answer = Client().post(url, {})
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/"), url


def snapshot(*listings: Practitioner) -> list:
    rows = []
    for listing in listings:
        listing.refresh_from_db()
        rows.append(
            (
                listing.bio,
                listing.owner_confirmed_on,
                listing.status,
                sorted(
                    Location.objects.filter(practitioner=listing).values_list("pk", "address_line1")
                ),
                PractitionerCertification.objects.filter(practitioner=listing).count(),
                OwnerRequest.objects.filter(practitioner=listing).count(),
            )
        )
    return rows


def test_another_owners_clinic_ids_answer_404_and_change_nothing(
    listing, jane, other_listing, other_owner
):
    theirs = other_listing.locations.get()
    before = snapshot(listing, other_listing)
    client = session(jane)
    clinic = {
        "address_line1": "666 Hijack St",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38117",
    }
    assert client.get(f"/my-listing/clinics/{theirs.pk}/").status_code == 404
    assert client.post(f"/my-listing/clinics/{theirs.pk}/", clinic).status_code == 404
    assert client.post(f"/my-listing/clinics/{theirs.pk}/close/").status_code == 404
    assert snapshot(listing, other_listing) == before


def test_another_listings_ids_in_the_post_body_change_only_your_own_listing(
    listing, jane, other_listing, other_owner
):
    before_other = snapshot(other_listing)
    client = session(jane)
    forged = {
        "practitioner": other_listing.pk,
        "practitioner_id": other_listing.pk,
        "slug": other_listing.slug,
        "id": other_listing.pk,
    }
    client.post("/my-listing/", {"bio": "Mine", "new_patients": "accepting", **forged})
    client.post("/my-listing/confirm/", forged)
    client.post("/my-listing/requests/hide/", {"note": "x", **forged})
    client.post("/my-listing/requests/change/", {"field": "name", "value": "Hijacked", **forged})
    client.post(
        "/my-listing/clinics/add/",
        {
            "address_line1": "1 A St",
            "city": "Memphis",
            "state": "TN",
            "postal_code": "38117",
            **forged,
        },
    )
    add_certification(client, content=PDF, name="c.pdf", **forged)
    assert snapshot(other_listing) == before_other
    listing.refresh_from_db()
    assert listing.bio == "Mine"
    assert OwnerRequest.objects.filter(practitioner=listing).count() == 2
    assert CertificationEvidence.objects.filter(practitioner=listing).count() == 1


def test_services_refuse_a_listing_the_user_does_not_own(listing, jane, other_listing, other_owner):
    theirs = other_listing.locations.get()
    with pytest.raises(owners.NotYours):
        owners.update_listing(practitioner=other_listing, owner=jane, changes={"bio": "x"})
    with pytest.raises(owners.NotYours):
        owners.close_clinic(practitioner=listing, owner=jane, location_id=theirs.pk)
    with pytest.raises(owners.NotYours):
        owners.request_hide(practitioner=other_listing, owner=jane)


def test_the_dashboard_runs_a_fixed_number_of_queries(listing, jane, django_assert_max_num_queries):
    client = session(jane)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/my-listing/").status_code == 200
        return len(queries)

    small = count()
    for _ in range(5):
        LocationFactory(practitioner=listing)
    for slug in ("art", "graston"):
        PractitionerCertification.objects.create(
            practitioner=listing, certification=certification(slug), self_reported=True
        )
    with django_assert_max_num_queries(small):
        assert client.get("/my-listing/").status_code == 200


def test_the_demo_has_a_claimed_listing_near_38117_whose_owner_can_sign_in(settings):
    from django.core.management import call_command

    from practitioners.ingest.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD

    settings.DEBUG = True  # make run: the demo owner gets the documented password
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    assert CertificationEvidence.objects.count() == 1
    client = Client()
    login = client.get("/accounts/login/")
    filled = (
        form(login, "main form").set("login", DEMO_OWNER_EMAIL).set("password", DEMO_OWNER_PASSWORD)
    )
    assert submit(client, filled).status_code == 302
    page = dashboard(client)
    listing = Practitioner.objects.get(claimed_by__email=DEMO_OWNER_EMAIL)
    assert listing.locations.filter(postal_code="38117").exists()
    certificates = text_of(page, "#my-certifications")
    assert "Active Release Techniques" in certificates and "checking your evidence" in certificates
    profile = Client().get(listing.get_absolute_url())
    shown = text_of(profile, ".certifications")
    assert "self-reported" in shown and "verified" in shown


def test_the_owner_sets_the_four_value_new_patient_status_and_it_is_dated_today(listing, jane):
    client = session(jane)
    page = dashboard(client)
    assert 'name="new_patients"' in page.content.decode()
    response = client.post(
        "/my-listing/",
        {"bio": listing.bio, "new_patients": "existing_and_family", "telehealth": ""},
    )
    assert response.status_code in (200, 302)
    listing.refresh_from_db()
    assert listing.new_patients == "existing_and_family"
    assert listing.new_patients_checked_on == timezone.localdate()
    assert client.post("/my-listing/", {"new_patients": "maybe"}).status_code == 400
