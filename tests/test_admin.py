"""The admin as staff use it: changelists and filters, change forms, actions, history, the
duplicates page, CSV import and export, the dashboard. Driven with the test client."""

import datetime as dt
import io
import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from practitioners import curation
from practitioners.ingest.csv import COLUMNS, OPTIONAL_COLUMNS, import_practitioners
from practitioners.ingest.export import PractitionerResource, escape_formula
from practitioners.models import (
    Certification,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
    TaxonomyMapping,
)
from practitioners.search import geo
from tests import browsing
from tests.factories import LocationFactory, PractitionerFactory, practitioner_at, profession

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/practitioners/practitioner/"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("curator", "c@example.com", "pw")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def listed_names(response) -> list[str]:
    html = response.content.decode()
    return re.findall(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', html)


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def listings():
    """Three listings that differ in every way the filters look at."""
    today = timezone.localdate()
    alpha = practitioner_at(35.11, -89.90, name="Alpha Published", certifications=["art"])
    alpha.certification_records.update(verified_on=today, verification_source="ART directory")
    beta = PractitionerFactory(
        name="Beta Pending",
        status=Practitioner.Status.PENDING,
        profession=profession("physical-therapist"),
        phone="601-555-0100",
    )
    LocationFactory(
        practitioner=beta,
        city="Jackson",
        state="MS",
        postal_code="39201",
        precision=Location.Precision.ZIP,
        geocode_status=Location.GeocodeStatus.FAILED,
        geocode_error="timeout",
    )
    PractitionerCertification.objects.create(
        practitioner=beta, certification=Certification.objects.get(slug="graston")
    )
    ListingReport.objects.create(practitioner=beta, kind="closed", details="Closed last week")
    gamma = practitioner_at(
        35.11, -89.90, name="Gamma Suspended", status="suspended", phone="(601) 555 0100"
    )
    return alpha, beta, gamma


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        CHANGELIST,
        CHANGELIST + "duplicates/",
        CHANGELIST + "import-csv/",
        CHANGELIST + "export/",
        "/admin/practitioners/location/",
        "/admin/",
    ],
)
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client, url):
    user = get_user_model().objects.create_user("visitor", password="pw")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- Changelist -------------------------------------------------------------------------------


def test_the_changelist_shows_what_staff_need_at_a_glance(staff_client, listings):
    response = staff_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert sorted(listed_names(response)) == ["Alpha Published", "Beta Pending", "Gamma Suspended"]
    for text in ("Active Release Techniques (ART)", "Jackson, MS", "Pending review", "never"):
        assert text in html
    assert "Failed (will retry) / zip" in html
    assert "Import CSV" in html and "Possible duplicates" in html and "Export" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=pending", ["Beta Pending"]),
        ("certification=graston", ["Beta Pending"]),
        ("state=MS", ["Beta Pending"]),
        ("verification=due", ["Beta Pending"]),
        ("verification=never", ["Beta Pending"]),
        ("geocode_status=failed", ["Beta Pending"]),
        ("precision=provided", ["Alpha Published", "Gamma Suspended"]),
        ("reports=open", ["Beta Pending"]),
        ("duplicates=yes", ["Beta Pending", "Gamma Suspended"]),
        ("q=39201", ["Beta Pending"]),
        ("q=Alpha", ["Alpha Published"]),
    ],
)
def test_each_changelist_filter_and_the_search_find_the_right_listings(
    staff_client, listings, query, expected
):
    response = staff_client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert sorted(listed_names(response)) == expected


def test_the_changelist_runs_a_fixed_number_of_queries_whatever_the_page_size(
    staff_client, django_assert_max_num_queries
):
    def make(n: int) -> None:
        for _ in range(n):
            listing = practitioner_at(35.11, -89.90, certifications=["art", "graston"])
            LocationFactory(practitioner=listing)
            ListingReport.objects.create(practitioner=listing, kind="other")

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(CHANGELIST)
        assert response.status_code == 200
        return len(queries)

    make(2)
    small = count_queries()
    make(38)
    with django_assert_max_num_queries(small):
        response = staff_client.get(CHANGELIST)
    assert len(listed_names(response)) == 40
    assert count_queries() == small


# --- Change form ------------------------------------------------------------------------------


def test_the_change_form_shows_clinics_certifications_reports_map_and_duplicates(
    staff_client, listings
):
    _, beta, _ = listings
    response = staff_client.get(f"{CHANGELIST}{beta.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "39201" in html  # the clinic inline
    assert "Graston Technique" in html  # the certification inline
    assert "Closed last week" in html  # the report, next to the listing
    assert "openstreetmap.org/?mlat=" in html
    assert "Gamma Suspended" in html and "same phone" in html
    assert "Nothing on this listing came from the NPI registry" in html


def test_the_change_form_says_which_fields_came_from_nppes_and_which_staff_corrected(
    staff_client,
):
    listing = practitioner_at(35.11, -89.90, name="Jane Q. Roe", phone="901-555-0000")
    listing.source = Practitioner.Source.NPPES
    listing.source_updated_on = dt.date(2026, 3, 1)
    listing.nppes_values = {"name": "Jane Q. Roe", "phone": "901-555-9999"}
    listing.save()
    html = staff_client.get(f"{CHANGELIST}{listing.pk}/change/").content.decode()
    assert "NPPES record last updated 2026-03-01" in html
    assert re.search(r"<td>name</td><td>Jane Q. Roe</td><td>as NPPES</td>", html)
    assert re.search(r"<td>phone</td><td>901-555-9999</td><td>corrected by staff</td>", html)


# The management form of the clinic page's opening-hours editor, with no rows.
NO_HOURS_ROWS = {
    "opening_hours-TOTAL_FORMS": "0",
    "opening_hours-INITIAL_FORMS": "0",
    "opening_hours-MIN_NUM_FORMS": "0",
    "opening_hours-MAX_NUM_FORMS": "1000",
}


def change_form_data(practitioner: Practitioner, **overrides) -> dict[str, str]:
    """What the change form posts back when nothing is edited (no inline rows)."""
    data = {
        "name": practitioner.name,
        "credentials": practitioner.credentials,
        "profession": str(practitioner.profession_id or ""),
        "npi": practitioner.npi,
        "slug": practitioner.slug,
        "status": practitioner.status,
        "status_reason": practitioner.status_reason,
        "phone": practitioner.phone,
        "email": practitioner.email,
        "website": practitioner.website,
        "bio": practitioner.bio,
        "external_id": practitioner.external_id,
        "new_patients": practitioner.new_patients,
        "_save": "Save",
    }
    for prefix in ("locations", "certification_records", "reports"):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    data.update(overrides)
    return data


def test_publishing_from_the_change_form_without_a_clinic_is_refused_with_the_reason(
    staff_client,
):
    listing = PractitionerFactory(status=Practitioner.Status.PENDING)
    response = staff_client.post(
        f"{CHANGELIST}{listing.pk}/change/",
        change_form_data(listing, status="published"),
        follow=True,
    )
    assert "Not published: it has no clinic location" in messages_of(response)
    assert Practitioner.objects.get(pk=listing.pk).status == "pending"


def test_adding_a_listing_with_a_clinic_and_publishing_it_works_and_geocodes_the_clinic(
    staff_client, django_capture_on_commit_callbacks
):
    new = Practitioner(name="New Person", slug="new-person", profession=profession())
    data = change_form_data(new, status="published")
    data.update(
        {
            "locations-TOTAL_FORMS": "1",
            "locations-0-address_line1": "1 Main St",
            "locations-0-city": "Memphis",
            "locations-0-state": "TN",
            "locations-0-postal_code": "38103",
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"{CHANGELIST}add/", data, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    listing = Practitioner.objects.get(slug="new-person")
    assert listing.status == "published"
    location = listing.locations.get()
    assert location.latitude is not None and location.geocode_status == "ok"
    assert listing.history.latest("history_date").history_user.username == "curator"


def test_an_invalid_npi_or_a_javascript_website_is_refused_in_the_admin(staff_client):
    listing = practitioner_at(35.11, -89.90)
    response = staff_client.post(
        f"{CHANGELIST}{listing.pk}/change/",
        change_form_data(listing, npi="1234567890", website="javascript:alert(1)"),
    )
    assert response.status_code == 200  # the form again, with errors
    html = response.content.decode()
    assert "not a valid NPI" in html and "http:// or https://" in html
    assert Practitioner.objects.get(pk=listing.pk).npi == ""


def test_a_report_is_resolved_next_to_the_listing(staff_client, staff, listings):
    _, beta, _ = listings
    report = beta.reports.get()
    data = change_form_data(beta)
    data.update(
        {
            "reports-TOTAL_FORMS": "1",
            "reports-INITIAL_FORMS": "1",
            "reports-0-id": str(report.pk),
            "reports-0-practitioner": str(beta.pk),
            "reports-0-resolution_note": "Confirmed closed; suspended",
            "reports-0-resolve": "on",
        }
    )
    location = beta.locations.get()
    for name in ("name", "address_line1", "address_line2", "city", "state", "postal_code"):
        data[f"locations-0-{name}"] = getattr(location, name)
    data.update(
        {
            "locations-TOTAL_FORMS": "1",
            "locations-INITIAL_FORMS": "1",
            "locations-0-id": str(location.pk),
            "locations-0-practitioner": str(beta.pk),
            "locations-0-phone": location.phone,
            "locations-0-latitude": str(location.latitude),
            "locations-0-longitude": str(location.longitude),
        }
    )
    response = staff_client.post(f"{CHANGELIST}{beta.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    report.refresh_from_db()
    assert report.resolved_at is not None
    assert (report.resolved_by, report.resolution_note) == (staff, "Confirmed closed; suspended")


def test_the_history_page_shows_who_changed_what(staff_client, staff):
    listing = practitioner_at(35.11, -89.90, status="pending")
    curation.publish_one(practitioner=listing, user=staff)
    response = staff_client.get(f"{CHANGELIST}{listing.pk}/history/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "curator" in html and "Published" in html


# --- Actions ----------------------------------------------------------------------------------


def run_action(client, action: str, ids: list[int], url: str = CHANGELIST, **extra):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **extra}
    return client.post(url, data, follow=True)


def test_the_publish_action_publishes_complete_listings_and_says_why_it_refused_others(
    staff_client,
):
    ready = practitioner_at(35.11, -89.90, name="Ready", status="pending")
    no_clinic = PractitionerFactory(name="No Clinic", status="pending")
    response = run_action(staff_client, "publish_selected", [ready.pk, no_clinic.pk])
    text = messages_of(response)
    assert "Published 1 listing(s)." in text
    assert "Not published: No Clinic, DC — it has no clinic location" in text
    assert Practitioner.objects.get(pk=ready.pk).status == "published"
    assert Practitioner.objects.get(pk=no_clinic.pk).status == "pending"


def test_the_suspend_action_asks_for_a_reason_then_suspends(staff_client):
    listing = practitioner_at(35.11, -89.90)
    page = run_action(staff_client, "suspend_selected", [listing.pk])
    assert "Reason" in page.content.decode()
    assert Practitioner.objects.get(pk=listing.pk).status == "published"
    response = run_action(
        staff_client, "suspend_selected", [listing.pk], apply="1", text="Practice closed"
    )
    assert "Suspended 1 listing(s)" in messages_of(response)
    listing.refresh_from_db()
    assert (listing.status, listing.status_reason) == ("suspended", "Practice closed")


def test_the_verify_action_records_today_the_staff_member_and_the_source(staff_client, staff):
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    run_action(staff_client, "verify_selected", [listing.pk])  # the question
    response = run_action(
        staff_client, "verify_selected", [listing.pk], apply="1", text="ART provider directory"
    )
    assert "Marked 1 certification record(s) verified today." in messages_of(response)
    record = listing.certification_records.get()
    assert (record.verified_on, record.verified_by, record.verification_source) == (
        timezone.localdate(),
        staff,
        "ART provider directory",
    )
    queue = staff_client.get(f"{CHANGELIST}?verification=due")
    assert listed_names(queue) == []


def test_the_regeocode_action_geocodes_the_clinics_again(staff_client, listings):
    _, beta, _ = listings
    response = run_action(staff_client, "regeocode_selected", [beta.pk])
    assert "Re-geocoded 1 clinic(s)." in messages_of(response)
    location = beta.locations.get()
    assert location.geocode_status == "ok" and location.geocode_error == ""


def test_the_export_action_and_page_offer_the_import_columns(staff_client, listings):
    response = staff_client.get(f"{CHANGELIST}export/")
    assert response.status_code == 200
    assert "address_line1" in response.content.decode()


# --- Locations, certification records, reports, reference data --------------------------------


def test_location_changelist_filters_by_geocode_status_and_precision(staff_client, listings):
    response = staff_client.get("/admin/practitioners/location/?geocode_status__exact=failed")
    assert response.status_code == 200
    html = response.content.decode()
    assert "39201" in html and "38117" not in html and "timeout" in html
    response = staff_client.get("/admin/practitioners/location/?precision__exact=zip")
    assert "39201" in response.content.decode()


def test_typing_coordinates_on_a_clinic_sets_a_manual_pin(staff_client, listings):
    alpha, _, _ = listings
    location = alpha.locations.get()
    url = f"/admin/practitioners/location/{location.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert "openstreetmap.org/?mlat=35.110000&amp;mlon=-89.900000" in page
    data = {
        "practitioner": str(alpha.pk),
        "name": location.name,
        "address_line1": location.address_line1,
        "city": location.city,
        "state": location.state,
        "postal_code": location.postal_code,
        "latitude": "35.1300",
        "longitude": "-89.8000",
        **NO_HOURS_ROWS,
    }
    assert staff_client.post(url, data).status_code == 302
    location.refresh_from_db()
    assert (location.latitude, location.longitude) == (35.13, -89.8)
    assert (location.precision, location.geocode_status) == ("manual", "manual")


def test_coordinates_outside_the_us_are_refused_with_a_hint(staff_client, listings):
    alpha, _, _ = listings
    location = alpha.locations.get()
    url = f"/admin/practitioners/location/{location.pk}/change/"
    data = {
        "practitioner": str(alpha.pk),
        "address_line1": location.address_line1,
        "city": location.city,
        "state": location.state,
        "postal_code": location.postal_code,
        "latitude": "-89.8",
        "longitude": "35.13",
        **NO_HOURS_ROWS,
    }
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "outside the United States" in response.content.decode()


def test_changing_a_clinic_address_in_the_admin_geocodes_it_again(
    staff_client, listings, django_capture_on_commit_callbacks
):
    alpha, _, _ = listings
    location = alpha.locations.get()
    url = f"/admin/practitioners/location/{location.pk}/change/"
    data = {
        "practitioner": str(alpha.pk),
        "address_line1": "1 Beale St",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38103",
        "latitude": str(location.latitude),
        "longitude": str(location.longitude),
        **NO_HOURS_ROWS,
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.post(url, data).status_code == 302
    location.refresh_from_db()
    assert location.postal_code == "38103"
    centroid = geo.zip_centroid("38103")
    assert location.precision == "zip" and location.geocoded_at is not None
    assert (location.latitude, location.longitude) == (centroid.latitude, centroid.longitude)


def test_certification_records_have_the_same_verification_queue(staff_client, listings):
    response = staff_client.get("/admin/practitioners/practitionercertification/?verification=due")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Beta Pending" in html and "Alpha Published" not in html


def test_open_reports_are_listed_and_resolved_with_a_note(staff_client, staff, listings):
    report = ListingReport.objects.get()
    url = "/admin/practitioners/listingreport/"
    assert "Beta Pending" in staff_client.get(f"{url}?state=open").content.decode()
    run_action(staff_client, "resolve_selected", [report.pk], url=url)
    response = run_action(
        staff_client, "resolve_selected", [report.pk], url=url, apply="1", text="Listing suspended"
    )
    assert "Resolved 1 report(s)." in messages_of(response)
    report.refresh_from_db()
    assert (report.resolved_by, report.resolution_note) == (staff, "Listing suspended")


def test_a_report_resolved_on_its_own_page_closes_and_leaves_the_work_queue(
    staff_client, staff, listings
):
    report = ListingReport.objects.get()
    assert curation.curation_counts().open_reports == 1
    page = staff_client.get(f"/admin/practitioners/listingreport/{report.pk}/change/")
    filled = browsing.form(page, "#listingreport_form")
    filled.set("resolution_note", "Address corrected").set("resolve", "on")
    response = browsing.submit(staff_client, filled, button="Save")
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.resolved_at is not None
    assert (report.resolved_by, report.resolution_note) == (staff, "Address corrected")
    assert curation.curation_counts().open_reports == 0
    resolved_page = staff_client.get(f"/admin/practitioners/listingreport/{report.pk}/change/")
    assert "Resolve now" not in resolved_page.content.decode()


def test_view_on_site_previews_a_pending_listing_for_staff_only(staff_client, client):
    listing = practitioner_at(35.11, -89.90, name="Pending Preview", status="pending")
    change_page = staff_client.get(f"{CHANGELIST}{listing.pk}/change/")
    view_on_site = browsing.link(change_page, text="View on site")
    preview = staff_client.get(browsing.local_path(view_on_site), follow=True)
    assert preview.status_code == 200
    assert browsing.local_path(preview.redirect_chain[-1][0]) == listing.get_absolute_url()
    banner = browsing.text_of(preview, ".preview-banner")
    assert "not public" in banner and "pending review" in banner
    assert "Pending Preview" in browsing.text_of(preview, "h1")
    assert preview["X-Robots-Tag"] == "noindex"
    client.logout()
    assert client.get(listing.get_absolute_url()).status_code == 404


def test_a_published_listing_shows_no_preview_banner_to_staff(staff_client):
    listing = practitioner_at(35.11, -89.90, name="Public Listing")
    page = staff_client.get(listing.get_absolute_url())
    assert page.status_code == 200
    assert browsing.text_of(page, ".preview-banner") == ""


def test_taxonomy_mappings_are_editable_in_the_list(staff_client):
    mapping = TaxonomyMapping.objects.order_by("pk").first()
    response = staff_client.get("/admin/practitioners/taxonomymapping/")
    assert response.status_code == 200
    assert 'name="form-0-profession"' in response.content.decode()
    assert mapping is not None


def test_the_admin_index_shows_the_curation_work_queue(staff_client, listings):
    response = staff_client.get("/admin/")
    html = response.content.decode()
    assert "Curation work queue" in html
    counts = response.context["counts"]
    assert (counts.pending_review, counts.verification_due, counts.open_reports) == (1, 1, 1)
    assert "?status__exact=pending" in html and "?verification=due" in html


def test_the_work_queue_counts_possible_duplicates_and_the_count_follows_a_dismissal(
    staff_client, listings
):
    index = staff_client.get("/admin/")
    row = next(
        tr
        for tr in browsing.soup(index).select("#curation-dashboard tr")
        if "duplicates" in tr.text
    )
    assert row.select_one("td.count").get_text(strip=True) == "1"
    duplicates = browsing.follow(staff_client, index, text="Possible duplicates")
    dismiss = browsing.form(duplicates, "#duplicates form")
    browsing.submit(staff_client, dismiss, button="Different practitioners")
    index = staff_client.get("/admin/")
    assert index.context["counts"].possible_duplicates == 0


# --- Duplicates -------------------------------------------------------------------------------


def test_the_duplicates_page_lists_pairs_and_dismissing_one_hides_it(staff_client, listings):
    _, beta, gamma = listings
    page = staff_client.get(f"{CHANGELIST}duplicates/")
    html = page.content.decode()
    assert "Beta Pending" in html and "Gamma Suspended" in html and "same phone" in html
    response = staff_client.post(
        f"{CHANGELIST}duplicates/",
        {"first": beta.pk, "second": gamma.pk, "decision": "dismiss"},
        follow=True,
    )
    assert "marked as different" in messages_of(response)
    assert "No possible duplicates." in response.content.decode()


def test_merging_from_the_duplicates_page_keeps_one_listing_with_both_clinics(
    staff_client, listings
):
    _, beta, gamma = listings
    duplicates = staff_client.get(f"{CHANGELIST}duplicates/")
    compare = browsing.follow(staff_client, duplicates, text="Compare and merge")
    assert (
        "Beta Pending" in compare.content.decode() and "Gamma Suspended" in compare.content.decode()
    )
    choose = browsing.form(compare, "form.compare-choose").set("keep", str(beta.pk))
    preview = browsing.submit(staff_client, choose, button="Preview the merge")
    assert f"The merged listing will be #{beta.pk}" in browsing.text_of(preview, "#merge-preview")
    assert Practitioner.objects.filter(pk=gamma.pk).exists()  # nothing written before confirming
    confirm = browsing.form(preview, "#merge-preview form")
    merged = browsing.submit(staff_client, confirm, button=f"Merge #{gamma.pk} into #{beta.pk}")
    assert merged.status_code == 302
    assert not Practitioner.objects.filter(pk=gamma.pk).exists()
    assert Practitioner.objects.get(pk=beta.pk).locations.count() == 2


def test_one_click_on_the_duplicates_page_never_merges(staff_client, listings):
    _, beta, gamma = listings
    staff_client.post(
        f"{CHANGELIST}duplicates/",
        {"first": beta.pk, "second": gamma.pk, "decision": "keep_first"},
    )
    assert Practitioner.objects.filter(pk=gamma.pk).exists()


def test_the_compare_page_shows_both_listings_fields_clinics_certificates_and_history(
    staff_client, staff
):
    a = practitioner_at(
        35.11, -89.90, name="Jane Roe", certifications=["art"], email="jane@example.com"
    )
    b = practitioner_at(35.12, -89.91, name="Jane Roe", certifications=["graston"], email="")
    curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=a.pk), source="ART directory", user=staff
    )
    page = staff_client.get(f"{CHANGELIST}duplicates/compare/?first={a.pk}&second={b.pk}")
    fields = browsing.text_of(page, "#compare-fields")
    assert "jane@example.com" in fields and "Email" in fields
    side_a, side_b = browsing.soup(page).select(".compare-side")
    assert "Active Release Techniques" in side_a.get_text()
    assert "verified" in side_a.get_text() and "ART directory" in side_a.get_text()
    assert "Graston" in side_b.get_text()
    assert a.locations.get().address_line1 in side_a.get_text()
    assert "curator" in side_a.get_text()  # the verification, in A's recent history


def test_a_merge_is_undone_from_the_kept_listings_history(staff_client, listings):
    _, beta, gamma = listings
    gamma_clinic = gamma.locations.get()
    staff_client.post(
        f"{CHANGELIST}duplicates/compare/",
        {"first": beta.pk, "second": gamma.pk, "keep": beta.pk, "confirm": "yes"},
    )
    history = staff_client.get(f"{CHANGELIST}{beta.pk}/history/")
    timeline = browsing.text_of(history, "#timeline")
    assert f"#{gamma.pk} Gamma Suspended merged into this listing" in timeline
    undo = browsing.form(history, "#timeline form")
    after = browsing.submit(staff_client, undo, button="Undo this merge", follow=True)
    assert "Merge undone" in messages_of(after)
    restored = Practitioner.objects.get(pk=gamma.pk)
    assert list(restored.locations.values_list("pk", flat=True)) == [gamma_clinic.pk]
    assert Practitioner.objects.get(pk=beta.pk).locations.count() == 1
    assert "(undone)" in browsing.text_of(after, "#timeline")
    assert browsing.soup(after).select("#timeline form") == []


def test_the_history_is_one_timeline_of_listing_clinics_and_certificates_with_authors(
    staff_client, staff
):
    listing = curation.submit_listing(
        submission=curation.ListingSubmission(
            name="Timeline Person",
            profession=profession("chiropractor"),
            clinics=[
                curation.ClinicSubmission(
                    address_line1="5100 Poplar Ave", city="Memphis", state="TN", postal_code="38137"
                )
            ],
            certifications=[
                curation.CertificationClaim(certification=Certification.objects.get(slug="art"))
            ],
        )
    )
    curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=listing.pk), source="ART directory", user=staff
    )
    clinic = listing.locations.get()
    clinic.phone = "901-555-0199"
    clinic._history_user = staff
    clinic.save()
    page = staff_client.get(f"{CHANGELIST}{listing.pk}/history/")
    rows = [
        " ".join(row.get_text(" ").split())
        for row in browsing.soup(page).select("#timeline tbody tr")
    ]
    assert any("Listing created public form" in r for r in rows), rows
    assert any("Clinic 5100 Poplar Ave, Memphis created public form" in r for r in rows)
    assert any("Certificate Active Release Techniques (ART) created public form" in r for r in rows)
    verified = next(r for r in rows if "Verified against ART directory" in r)
    assert "curator" in verified and "Deleted user" not in verified
    phone = next(r for r in rows if "Clinic 5100 Poplar Ave, Memphis changed" in r)
    assert "curator" in phone and "901-555-0199" in phone
    assert "None" not in " ".join(rows)


# --- CSV import and export ----------------------------------------------------------------------


HEADER = ",".join(COLUMNS)


def csv_row(external_id: str, name: str, **values) -> str:
    row = {
        "external_id": external_id,
        "name": name,
        "profession": "chiropractor",
        "certifications": "art",
        "address_line1": "10 Main St",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38103",
        "status": "published",
        **values,
    }
    return ",".join(row.get(column, "") for column in COLUMNS)


def upload(client, text: str, **extra):
    """Upload a CSV and follow to its import job's page (the immediate task backend has
    already run the preview)."""
    file = SimpleUploadedFile("listings.csv", text.encode(), content_type="text/csv")
    return client.post(f"{CHANGELIST}import-csv/", {"file": file, **extra}, follow=True)


def import_buttons(response) -> dict[str, str]:
    """The import buttons the job page offers: their value (all / skip) and label."""
    return dict(
        re.findall(
            r'<button type="submit" class="default" name="mode" value="(\w+)">([^<]+)<',
            response.content.decode(),
        )
    )


def test_an_admin_import_with_bad_rows_reports_each_line_and_writes_nothing(staff_client):
    text = "\n".join(
        [HEADER, csv_row("a1", "Good Row"), csv_row("a2", "Bad Row", profession="wizard")]
    )
    response = upload(staff_client, text)
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"<td>3</td><td>unknown profession &#x27;wizard&#x27;</td>", html)
    assert "all" not in import_buttons(response)  # nothing to confirm as the file stands
    assert not Practitioner.objects.exists()


def test_an_admin_import_previews_then_writes_on_confirmation(staff_client):
    text = "\n".join([HEADER, csv_row("a1", "First Person"), csv_row("a2", "Second Person")])
    preview = upload(staff_client, text)
    html = preview.content.decode()
    assert "Preview (nothing written yet)" in html and "2 rows read" in html
    assert not Practitioner.objects.exists()
    assert import_buttons(preview) == {"all": "Import all 2 rows"}
    job_url = preview.redirect_chain[-1][0]
    response = staff_client.post(job_url, {"mode": "all"}, follow=True)
    assert "Imported." in messages_of(response)
    assert sorted(Practitioner.objects.values_list("name", flat=True)) == [
        "First Person",
        "Second Person",
    ]
    # The upload is used once.
    again = staff_client.post(job_url, {"mode": "all"}, follow=True)
    assert "already been started" in messages_of(again)
    assert Practitioner.objects.count() == 2


def test_an_admin_import_can_skip_bad_rows(staff_client):
    text = "\n".join([HEADER, csv_row("a1", "Good Row"), csv_row("a2", "Bad", state="Tenn")])
    preview = upload(staff_client, text)
    assert import_buttons(preview) == {"skip": "Import the 1 good row and skip the 1 bad"}
    staff_client.post(preview.redirect_chain[-1][0], {"mode": "skip"})
    assert list(Practitioner.objects.values_list("name", flat=True)) == ["Good Row"]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1 901 555 0100", "'+1 901 555 0100"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-89.9034", "-89.9034"),
        ("Jane Roe", "Jane Roe"),
        (-89.9, -89.9),
    ],
)
def test_exports_escape_spreadsheet_formulas_but_not_numbers(value, escaped):
    assert escape_formula(value) == escaped


def test_an_export_has_the_import_columns_and_imports_back_unchanged(listings):
    alpha, beta, _ = listings
    for listing in (alpha, beta):
        listing.external_id = f"ext-{listing.pk}"
        listing.bio = "=cmd()"
        listing.save()
    dataset = PractitionerResource().export(
        queryset=Practitioner.objects.filter(pk__in=[alpha.pk, beta.pk])
    )
    assert dataset.headers == [*COLUMNS, *OPTIONAL_COLUMNS]  # npi and the practice columns
    rows = dataset.dict
    assert [r["name"] for r in rows] == ["Alpha Published", "Beta Pending"]
    assert rows[0]["bio"] == "'=cmd()"
    assert rows[1]["state"] == "MS" and rows[1]["certifications"] == "graston"
    csv_text = dataset.csv.replace("'=cmd()", "=cmd()")
    report = import_practitioners(stream=io.StringIO(csv_text), dry_run=True)
    assert report.errors == []
    assert (report.practitioners_unchanged, report.practitioners_created) == (2, 0)


def export_form(**extra) -> dict:
    fields = {f"practitionerresource_{column}": "on" for column in [*COLUMNS, "npi"]}
    return {"format": "0", "resource": "0", **fields, **extra}


def test_exporting_from_the_admin_downloads_the_import_columns_with_formulas_escaped(
    staff_client, listings
):
    alpha, _, _ = listings
    alpha.name = '=HYPERLINK("http://evil.example")'
    alpha.save()
    response = staff_client.post(f"{CHANGELIST}export/", export_form())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == ",".join([*COLUMNS, "npi"])
    assert any(line.startswith(",\"'=HYPERLINK(") or "'=HYPERLINK(" in line for line in lines)
    assert len(lines) == 4  # header + one row per clinic


def test_exporting_selected_listings_from_the_changelist_action(staff_client, listings):
    _, beta, _ = listings
    page = run_action(staff_client, "export_admin_action", [beta.pk])
    assert page.status_code == 200
    response = staff_client.post(f"{CHANGELIST}export/", export_form(export_items=[str(beta.pk)]))
    lines = response.content.decode().splitlines()
    assert len(lines) == 2 and "Beta Pending" in lines[1]


def test_removing_the_last_clinic_of_a_published_listing_warns_staff(staff_client):
    listing = practitioner_at(35.11, -89.90)
    location = listing.locations.get()
    data = change_form_data(listing)
    data.update(
        {
            "locations-TOTAL_FORMS": "1",
            "locations-INITIAL_FORMS": "1",
            "locations-0-id": str(location.pk),
            "locations-0-practitioner": str(listing.pk),
            "locations-0-address_line1": location.address_line1,
            "locations-0-city": location.city,
            "locations-0-state": location.state,
            "locations-0-postal_code": location.postal_code,
            "locations-0-DELETE": "on",
        }
    )
    response = staff_client.post(f"{CHANGELIST}{listing.pk}/change/", data, follow=True)
    assert "now has a problem: it has no clinic location" in messages_of(response)
    assert not Location.objects.filter(pk=location.pk).exists()


def test_clinic_and_certification_history_pages_show_who_changed_them(staff_client, staff):
    listing = practitioner_at(35.11, -89.90, certifications=["art"])
    curation.verify_certifications(
        practitioners=Practitioner.objects.filter(pk=listing.pk), source="ART site", user=staff
    )
    record = listing.certification_records.get()
    response = staff_client.get(
        f"/admin/practitioners/practitionercertification/{record.pk}/history/"
    )
    assert response.status_code == 200
    assert "curator" in response.content.decode()
    location = listing.locations.get()
    response = staff_client.get(f"/admin/practitioners/location/{location.pk}/history/")
    assert response.status_code == 200
    assert "Created" in response.content.decode()


@pytest.mark.parametrize(
    "model",
    [
        "practitioner",
        "location",
        "practitionercertification",
        "listingreport",
        "profession",
        "certification",
        "taxonomymapping",
        "geocodecacheentry",
        "duplicatedismissal",
    ],
)
def test_every_curation_list_and_change_page_loads_for_staff(staff_client, listings, model):
    response = staff_client.get(f"/admin/practitioners/{model}/")
    assert response.status_code == 200
    obj = apps.get_model("practitioners", model).objects.order_by("pk").first()
    if obj is not None:
        assert staff_client.get(f"/admin/practitioners/{model}/{obj.pk}/change/").status_code == 200


def test_actions_work_on_a_list_narrowed_by_a_search_across_clinics(staff_client, staff):
    first = practitioner_at(35.11, -89.90, name="First", status="pending", certifications=["art"])
    LocationFactory(practitioner=first)  # two clinics: the search needs DISTINCT
    second = practitioner_at(35.11, -89.90, name="Second", status="pending")
    url = f"{CHANGELIST}?q=Memphis"
    ids = [first.pk, second.pk]
    assert "Published 2 listing(s)." in messages_of(
        run_action(staff_client, "publish_selected", ids, url=url)
    )
    run_action(staff_client, "suspend_selected", ids, url=url, apply="1", text="Closed")
    run_action(staff_client, "verify_selected", ids, url=url, apply="1", text="ART site")
    statuses = set(Practitioner.objects.values_list("status", flat=True))
    assert statuses == {"suspended"}
    assert first.certification_records.get().verified_by == staff
