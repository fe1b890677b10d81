"""Curation rules: publishing, suspension, verification and its work queue, history, duplicates
(find, merge, dismiss), public submissions and problem reports."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from practitioners import curation
from practitioners.models import (
    DuplicateDismissal,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
)
from tests.factories import (
    LocationFactory,
    PractitionerFactory,
    certification,
    practitioner_at,
    profession,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 1)


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("curator", password="x", is_staff=True)


def reload(practitioner: Practitioner) -> Practitioner:
    return Practitioner.objects.get(pk=practitioner.pk)


# --- Publishing -------------------------------------------------------------------------------


def test_publishing_a_complete_pending_listing_makes_it_public(staff):
    listing = practitioner_at(35.11, -89.90, status=Practitioner.Status.PENDING)
    outcome = curation.publish(practitioners=Practitioner.objects.filter(pk=listing.pk), user=staff)
    assert [p.pk for p in outcome.published] == [listing.pk]
    assert reload(listing).status == Practitioner.Status.PUBLISHED
    assert Practitioner.objects.published().filter(pk=listing.pk).exists()


def test_publishing_refuses_a_listing_without_a_clinic_and_says_why(staff):
    listing = PractitionerFactory(status=Practitioner.Status.PENDING)
    with pytest.raises(curation.PublishRefused) as refused:
        curation.publish_one(practitioner=listing, user=staff)
    assert "no clinic location" in " ".join(refused.value.reasons)
    assert reload(listing).status == Practitioner.Status.PENDING


def test_publishing_refuses_a_listing_without_a_profession_and_says_why(staff):
    listing = practitioner_at(35.11, -89.90, status=Practitioner.Status.DRAFT, profession=None)
    outcome = curation.publish(practitioners=Practitioner.objects.filter(pk=listing.pk), user=staff)
    assert outcome.published == []
    assert outcome.refused[0].reasons == ["it has no profession"]
    assert reload(listing).status == Practitioner.Status.DRAFT


def test_publishing_several_publishes_the_good_ones_and_refuses_the_others(staff):
    good = practitioner_at(35.11, -89.90, status=Practitioner.Status.PENDING)
    bad = PractitionerFactory(status=Practitioner.Status.PENDING, profession=None)
    outcome = curation.publish(
        practitioners=Practitioner.objects.filter(pk__in=[good.pk, bad.pk]), user=staff
    )
    assert [p.pk for p in outcome.published] == [good.pk]
    assert outcome.refused[0].practitioner.pk == bad.pk
    assert outcome.refused[0].reasons == [
        "it has no clinic location (add an address first)",
        "it has no profession",
    ]


def test_suspending_records_the_reason_and_takes_the_listing_off_the_site(staff):
    listing = practitioner_at(35.11, -89.90)
    count = curation.suspend(
        practitioners=Practitioner.objects.filter(pk=listing.pk),
        reason="Practice closed",
        user=staff,
    )
    assert count == 1
    listing = reload(listing)
    assert (listing.status, listing.status_reason) == ("suspended", "Practice closed")
    assert not Practitioner.objects.published().filter(pk=listing.pk).exists()


# --- History ----------------------------------------------------------------------------------


def test_history_records_who_published_and_who_suspended_with_the_reason(staff):
    listing = practitioner_at(35.11, -89.90, status=Practitioner.Status.PENDING)
    curation.publish_one(practitioner=listing, user=staff)
    curation.suspend(
        practitioners=Practitioner.objects.filter(pk=listing.pk), reason="Moved away", user=staff
    )
    entries = list(listing.history.order_by("history_date", "history_id"))
    assert [e.status for e in entries] == ["pending", "published", "suspended"]
    assert entries[1].history_user == staff
    assert entries[2].history_user == staff
    assert entries[2].history_change_reason == "Suspended: Moved away"


def test_history_keeps_every_change_to_a_location_and_a_certification_record(staff):
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    location = listing.locations.get()
    location.address_line1 = "1 New Street"
    location.save()
    curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=listing.pk), source="ART directory", user=staff
    )
    assert location.history.count() == 2
    assert location.history.earliest("history_date").address_line1 != "1 New Street"
    record = listing.certification_records.get()
    latest = record.history.latest("history_date")
    assert (latest.verification_source, latest.history_user) == ("ART directory", staff)


# --- Verification -----------------------------------------------------------------------------


def test_verifying_records_the_day_who_and_the_source(staff):
    listing = practitioner_at(35.11, -89.90, certifications=["art", "graston"])
    count = curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=listing.pk),
        source="ART provider directory",
        user=staff,
        on=TODAY,
    )
    assert count == 2
    for record in listing.certification_records.all():
        assert record.verified_on == TODAY
        assert record.verified_by == staff
        assert record.verification_source == "ART provider directory"


def test_verifying_without_saying_where_is_refused():
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    with pytest.raises(ValueError, match="verification source"):
        curation.verify_certifications(
            practitioners=Practitioner.objects.filter(pk=listing.pk), source="  "
        )
    assert listing.certification_records.get().verified_on is None


@pytest.mark.parametrize(
    ("verified_days_ago", "expires_in_days", "in_queue"),
    [
        (None, None, True),  # never verified
        (400, None, True),  # verified over 12 months ago
        (30, 45, True),  # expires within 60 days
        (30, 90, False),  # fresh and not expiring soon
        (30, None, False),  # fresh, no expiry
        (364, None, False),  # just under a year
    ],
)
def test_verification_queue_holds_stale_unverified_and_soon_expiring_certifications(
    verified_days_ago, expires_in_days, in_queue
):
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    other = practitioner_at(35.11, -89.90)  # no certification: nothing to verify
    record = listing.certification_records.get()
    if verified_days_ago is not None:
        record.verified_on = TODAY - dt.timedelta(days=verified_days_ago)
    if expires_in_days is not None:
        record.expires_on = TODAY + dt.timedelta(days=expires_in_days)
    record.save()
    queue = curation.needing_verification(Practitioner.objects.all(), TODAY)
    assert list(queue.values_list("pk", flat=True)) == ([listing.pk] if in_queue else [])
    assert other.pk not in queue.values_list("pk", flat=True)


def test_the_verification_windows_follow_the_settings(settings):
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    record = listing.certification_records.get()
    record.verified_on = TODAY - dt.timedelta(days=100)
    record.expires_on = TODAY + dt.timedelta(days=20)
    record.save()
    records = PractitionerCertification.objects.all()
    assert (records.stale(TODAY).count(), records.expiring(TODAY).count()) == (0, 1)
    assert not record.verification_is_stale(TODAY)
    settings.VERIFICATION_MAX_AGE_DAYS = 90
    settings.CERTIFICATION_EXPIRY_WARNING_DAYS = 10
    assert (records.stale(TODAY).count(), records.expiring(TODAY).count()) == (1, 0)
    assert record.verification_is_stale(TODAY)
    assert list(records.due(TODAY)) == [record]


def test_dashboard_counts_the_work_queue():
    practitioner_at(35.11, -89.90, certifications=["art"])  # never verified
    PractitionerFactory(status=Practitioner.Status.PENDING)
    reported = practitioner_at(35.11, -89.90)
    curation.report_problem(practitioner=reported, kind="closed")
    counts = curation.curation_counts()
    assert (counts.pending_review, counts.verification_due, counts.open_reports) == (1, 1, 1)


# --- Duplicates -------------------------------------------------------------------------------


def pair_ids(pairs) -> list[tuple[int, int]]:
    return [(p.first.pk, p.second.pk) for p in pairs]


def test_same_name_with_a_clinic_in_the_same_zip_is_a_possible_duplicate():
    a = practitioner_at(35.11, -89.90, name="Jane Roe", phone="", postal_code="38117")
    b = practitioner_at(35.12, -89.91, name=" jane roe ", phone="", postal_code="38117")
    practitioner_at(35.12, -89.91, name="Jane Roe", phone="", postal_code="38104")
    pairs = curation.find_possible_duplicates()
    assert pair_ids(pairs) == [(a.pk, b.pk)]
    assert pairs[0].reasons == ["same name and ZIP"]


def test_the_same_phone_written_differently_is_a_possible_duplicate():
    a = PractitionerFactory(name="A", phone="(901) 555-0199")
    b = PractitionerFactory(name="B", phone="+1 901.555.0199")
    PractitionerFactory(name="C", phone="(901) 555-0198")
    pairs = curation.find_possible_duplicates()
    assert pair_ids(pairs) == [(a.pk, b.pk)]
    assert pairs[0].reasons == ["same phone"]


def test_the_same_email_in_another_case_is_a_possible_duplicate():
    a = PractitionerFactory(name="A", phone="", email="Jane@Example.com")
    b = PractitionerFactory(name="B", phone="", email="jane@example.com")
    PractitionerFactory(name="C", phone="", email="")
    PractitionerFactory(name="D", phone="", email="")
    assert pair_ids(curation.find_possible_duplicates()) == [(a.pk, b.pk)]


def test_possible_duplicates_of_one_listing_agree_with_the_whole_scan():
    a = practitioner_at(35.11, -89.90, name="Jane Roe", phone="901-555-0100", email="j@x.com")
    b = practitioner_at(35.11, -89.90, name="Jane Roe", phone="9015550100", email="J@X.com")
    PractitionerFactory(name="Someone Else", phone="", email="")
    pairs = curation.possible_duplicates_of(a)
    assert pair_ids(pairs) == pair_ids(curation.find_possible_duplicates()) == [(a.pk, b.pk)]
    assert sorted(pairs[0].reasons) == ["same email", "same name and ZIP", "same phone"]


def test_a_dismissed_pair_is_no_longer_flagged(staff):
    a = PractitionerFactory(name="A", phone="901 555 0111")
    b = PractitionerFactory(name="B", phone="901 555 0111")
    curation.dismiss_duplicate(first=b, second=a, user=staff)
    assert curation.find_possible_duplicates() == []
    assert curation.possible_duplicates_of(a) == []
    dismissal = DuplicateDismissal.objects.get()
    assert (dismissal.first_id, dismissal.second_id, dismissal.dismissed_by) == (a.pk, b.pk, staff)


def test_merging_moves_clinics_certifications_and_reports_then_removes_the_duplicate(staff):
    keep = practitioner_at(35.11, -89.90, certifications=["art"], email="", npi="")
    remove = practitioner_at(
        35.2, -89.8, certifications=["art", "graston"], email="jane@example.com", npi="1234567893"
    )
    LocationFactory(practitioner=remove, address_line1=keep.locations.get().address_line1)
    keep_record = keep.certification_records.get()
    remove.certification_records.filter(certification__slug="art").update(
        verified_on=TODAY, verification_source="ART directory", credential_number="A-1"
    )
    curation.report_problem(practitioner=remove, kind="wrong_address")

    merged = curation.merge_practitioners(keep=keep, remove=remove, user=staff)

    assert not Practitioner.objects.filter(pk=remove.pk).exists()
    assert merged.email == "jane@example.com" and merged.npi == "1234567893"
    assert merged.locations.count() == 2  # the clinic at the same address was not copied
    slugs = sorted(merged.certification_records.values_list("certification__slug", flat=True))
    assert slugs == ["art", "graston"]
    keep_record.refresh_from_db()
    assert (keep_record.verified_on, keep_record.credential_number) == (TODAY, "A-1")
    assert ListingReport.objects.get().practitioner_id == keep.pk
    assert merged.history.latest("history_date").history_change_reason.startswith("Merged")


def test_a_merge_previewed_first_says_what_will_happen_and_writes_nothing():
    keep = practitioner_at(35.11, -89.90, certifications=["art"], email="", npi="")
    remove = practitioner_at(
        35.2, -89.8, certifications=["art", "graston"], email="j@example.com", npi=""
    )
    LocationFactory(practitioner=remove, address_line1=keep.locations.get().address_line1)
    plan = curation.plan_merge(keep=keep, remove=remove)
    assert plan.filled == {"email": "j@example.com"}
    assert (len(plan.clinics_moved), len(plan.clinics_dropped)) == (1, 1)
    assert [r.certification.slug for r in plan.records_moved] == ["graston"]
    assert [r.certification.slug for r in plan.records_dropped] == ["art"]
    assert plan.merged_value("email") == "j@example.com"
    assert Practitioner.objects.filter(pk=remove.pk).exists()
    assert keep.locations.count() == 1


def test_undoing_a_merge_brings_back_the_listing_its_clinics_certificates_and_reports(staff):
    keep = practitioner_at(35.11, -89.90, certifications=["art"], email="", npi="")
    remove = practitioner_at(
        35.2, -89.8, certifications=["art", "graston"], email="jane@example.com", npi="1234567893"
    )
    same_address = LocationFactory(
        practitioner=remove, address_line1=keep.locations.get().address_line1
    )
    remove.certification_records.filter(certification__slug="art").update(
        verified_on=TODAY, verification_source="ART directory", credential_number="A-1"
    )
    curation.report_problem(practitioner=remove, kind="wrong_address")
    before = {
        "clinics": sorted(remove.locations.values_list("pk", "address_line1")),
        "records": sorted(
            remove.certification_records.values_list(
                "certification__slug", "verified_on", "credential_number"
            )
        ),
        "created_at": remove.created_at,
    }
    keep_record = keep.certification_records.get()

    curation.merge_practitioners(keep=keep, remove=remove, user=staff)
    merge = keep.merges.get()
    restored = curation.undo_merge(merge=merge, user=staff)

    assert (restored.pk, restored.name, restored.slug) == (remove.pk, remove.name, remove.slug)
    assert (restored.email, restored.npi) == ("jane@example.com", "1234567893")
    assert restored.created_at == before["created_at"]
    assert sorted(restored.locations.values_list("pk", "address_line1")) == before["clinics"]
    assert same_address.pk in restored.locations.values_list("pk", flat=True)
    records = restored.certification_records.values_list(
        "certification__slug", "verified_on", "credential_number"
    )
    assert sorted(records) == before["records"]
    assert ListingReport.objects.get().practitioner_id == remove.pk
    keep.refresh_from_db()
    keep_record.refresh_from_db()
    assert (keep.email, keep.npi, keep.locations.count()) == ("", "", 1)
    assert (keep_record.verified_on, keep_record.credential_number) == (None, "")
    merge.refresh_from_db()
    assert merge.undone_by == staff and merge.undone_at is not None
    reasons = restored.history.values_list("history_change_reason", flat=True)
    assert any("undone" in (reason or "") for reason in reasons)
    with pytest.raises(curation.MergeRefused, match="undone already"):
        curation.undo_merge(merge=merge, user=staff)


def test_a_merge_cannot_be_undone_once_its_npi_belongs_to_another_listing(staff):
    keep = practitioner_at(35.11, -89.90, npi="")
    remove = practitioner_at(35.2, -89.8, npi="1234567893")
    curation.merge_practitioners(keep=keep, remove=remove, user=staff)
    keep.refresh_from_db()
    keep.npi = ""
    keep.save()
    PractitionerFactory(npi="1234567893")
    with pytest.raises(curation.MergeRefused, match="NPI 1234567893"):
        curation.undo_merge(merge=keep.merges.get(), user=staff)
    assert not Practitioner.objects.filter(pk=remove.pk).exists()


# --- Submissions and reports ------------------------------------------------------------------


def submission(**overrides) -> curation.ListingSubmission:
    values = {
        "name": "Jane Roe",
        "credentials": "DC",
        "profession": profession("chiropractor"),
        "clinics": [
            curation.ClinicSubmission(
                address_line1="5050 Poplar Ave", city="Memphis", state="TN", postal_code="38157"
            )
        ],
        "certifications": [
            curation.CertificationClaim(certification=certification("art"), credential_number="X1")
        ],
    }
    values.update(overrides)
    return curation.ListingSubmission(**values)


def test_a_submission_lands_pending_from_the_public_and_is_placed_on_the_map():
    listing = curation.submit_listing(submission=submission())
    assert (listing.status, listing.source) == ("pending", "submission")
    location = listing.locations.get()
    assert location.source == Location.Source.SUBMISSION
    assert location.latitude is not None
    record = listing.certification_records.get()
    assert (record.certification.slug, record.credential_number, record.verified_on) == (
        "art",
        "X1",
        None,
    )
    assert not Practitioner.objects.published().filter(pk=listing.pk).exists()


def test_a_submission_with_an_npi_already_listed_is_kept_for_staff_to_merge():
    existing = practitioner_at(35.11, -89.90, npi="1234567893")
    listing = curation.submit_listing(submission=submission(npi="1234567893"))
    assert listing.pk != existing.pk and listing.npi == ""
    assert "1234567893" in listing.status_reason


def test_a_report_is_open_until_staff_resolve_it(staff):
    listing = practitioner_at(35.11, -89.90)
    report = curation.report_problem(
        practitioner=listing, kind=ListingReport.Kind.CLOSED, details="Closed in May"
    )
    assert report.resolved_at is None
    curation.resolve_report(report=report, user=staff, note="Suspended the listing")
    assert report.resolved_at is not None and report.resolved_at <= timezone.now()
    assert (report.resolved_by, report.resolution_note) == (staff, "Suspended the listing")


def test_a_report_of_an_unknown_kind_is_refused():
    listing = practitioner_at(35.11, -89.90)
    with pytest.raises(ValueError):
        curation.report_problem(practitioner=listing, kind="spam")
    assert not PractitionerCertification.objects.exists() and not ListingReport.objects.exists()
