"""The public side of curation: "List your practice" (/submit/) and "Report a problem with this
listing", their protections (CSRF, honeypot, rate limit, length limits, plain-text bios, http(s)
websites), and that nothing unpublished ever reaches the public."""

import re

import pytest
from django.test import Client, override_settings

from practitioners.models import ListingReport, Practitioner
from tests import browsing
from tests.factories import certification, practitioner_at, practitioner_near_zip, profession

pytestmark = pytest.mark.django_db

VALID_NPI = "1234567893"


def submission_data(**overrides) -> dict[str, str]:
    data = {
        "name": "Jane Roe",
        "credentials": "DC, CCSP",
        "profession": str(profession("chiropractor").pk),
        "npi": "",
        "phone": "(901) 555-0142",
        "email": "jane@example.com",
        "website": "https://janeroe.example.com",
        "bio": "Sports chiropractor.",
        "accepting_new_patients": "on",
        "company_url": "",
        "clinic-TOTAL_FORMS": "2",
        "clinic-INITIAL_FORMS": "0",
        "clinic-MIN_NUM_FORMS": "1",
        "clinic-MAX_NUM_FORMS": "5",
        "clinic-0-name": "Roe Chiropractic",
        "clinic-0-address_line1": "5050 Poplar Ave",
        "clinic-0-city": "Memphis",
        "clinic-0-state": "tn",
        "clinic-0-postal_code": "38157-1234",
        "cert-TOTAL_FORMS": "2",
        "cert-INITIAL_FORMS": "0",
        "cert-MIN_NUM_FORMS": "0",
        "cert-MAX_NUM_FORMS": "10",
        "cert-0-certification": str(certification("art").pk),
        "cert-0-credential_number": "ART-12345",
        "cert-0-earned_on": "2021-05-01",
    }
    data.update(overrides)
    return data


def field_error(response, field_id: str) -> str:
    """The error shown right after the field, or '' when there is none."""
    match = re.search(rf'id="{field_id}_error">([^<]+)<', response.content.decode())
    return match.group(1) if match else ""


# --- "List your practice" --------------------------------------------------------------------


def test_the_submission_form_has_csrf_protection_and_a_hidden_honeypot(client):
    response = client.get("/submit/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="company_url"' in html and 'aria-hidden="true"' in html
    assert 'maxlength="200"' in html  # length limits reach the browser too


def blocks(response, kind: str) -> list:
    return browsing.soup(response).select(f"#{kind}-blocks fieldset.block")


def test_list_your_practice_adds_clinics_and_certifications_up_to_the_limits_without_javascript(
    client,
):
    page = client.get("/submit/")
    assert (len(blocks(page, "clinic")), len(blocks(page, "cert"))) == (1, 1)
    typed = browsing.form(page, "form.submission-form")
    typed.set("name", "Jane Roe").set("profession", str(profession("chiropractor").pk))
    typed.set("clinic-0-address_line1", "5050 Poplar Ave").set("clinic-0-city", "Memphis")
    typed.set("clinic-0-state", "TN").set("clinic-0-postal_code", "38157")
    typed.set("telehealth", "on")
    typed.fields = [(k, v) for k, v in typed.fields if k != "accepting_new_patients"]
    for clinics in range(2, 6):
        page = browsing.submit(client, typed, button="Add another clinic")
        assert page.status_code == 200
        assert len(blocks(page, "clinic")) == clinics
        assert browsing.soup(page).select(".error-summary, .field-error") == []
        typed = browsing.form(page, "form.submission-form")
        assert typed.value("name") == "Jane Roe"
        assert typed.value("clinic-0-city") == "Memphis"
        assert (typed.value("telehealth"), typed.value("accepting_new_patients")) == ("on", None)
        typed.set(f"clinic-{clinics - 1}-address_line1", f"{clinics}00 Main St")
        typed.set(f"clinic-{clinics - 1}-city", "Memphis").set(f"clinic-{clinics - 1}-state", "TN")
        typed.set(f"clinic-{clinics - 1}-postal_code", "38103")
    assert "Add another clinic" not in browsing.text_of(page, "#clinic-blocks")
    for certifications in range(2, 11):
        page = browsing.submit(client, typed, button="Add another certification")
        assert len(blocks(page, "cert")) == certifications
        typed = browsing.form(page, "form.submission-form")
    assert "Add another certification" not in browsing.text_of(page, "#cert-blocks")
    typed.set("cert-0-certification", str(certification("art").pk))
    typed.set("cert-9-certification", str(certification("graston").pk))
    done = browsing.submit(client, typed, button="Send for review")
    assert done.status_code == 302
    listing = Practitioner.objects.get()
    assert listing.locations.count() == 5 and not listing.accepting_new_patients
    slugs = sorted(listing.certification_records.values_list("certification__slug", flat=True))
    assert slugs == ["art", "graston"]


def test_required_fields_are_marked_and_errors_are_summarised_with_links_to_each_field(client):
    page = client.get("/submit/")
    labels = {
        label["for"]: " ".join(label.get_text(" ").split())
        for label in browsing.soup(page).select("label[for]")
    }
    assert labels["id_name"] == "Full name (required)"
    assert labels["id_clinic-0-address_line1"] == "Street address (required)"
    assert "required" not in labels["id_credentials"]
    response = client.post(
        "/submit/", submission_data(name="", **{"clinic-0-postal_code": "ABCDE"})
    )
    assert response.status_code == 400
    summary = browsing.soup(response).select_one("#error-summary")
    assert summary.get_text(" ").split()[:5] == ["There", "are", "2", "problems", "with"]
    targets = {a["href"]: " ".join(a.get_text(" ").split()) for a in summary.select("a")}
    assert targets["#id_name"] == "Full name: This field is required."
    assert targets["#id_clinic-0-postal_code"].startswith("Clinic 1: ZIP code: Enter a 5-digit")
    page = browsing.soup(response)
    for target in targets:
        assert page.select_one(target) is not None, f"{target} links to nothing"


def test_the_date_field_uses_the_date_picker_and_accepts_what_its_hint_says(client):
    page = client.get("/submit/")
    date = browsing.soup(page).select_one("#id_cert-0-earned_on")
    assert date["type"] == "date"
    hint = browsing.text_of(page, "#id_cert-0-earned_on_helptext")
    assert "MM/DD/YYYY" in hint
    client.post("/submit/", submission_data(**{"cert-0-earned_on": "05/01/2021"}))
    record = Practitioner.objects.get().certification_records.get()
    assert record.earned_on.isoformat() == "2021-05-01"


def test_a_post_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/submit/", submission_data())
    assert response.status_code == 403
    assert not Practitioner.objects.exists()


def test_a_valid_submission_lands_pending_and_says_thank_you(client):
    response = client.post("/submit/", submission_data(), follow=True)
    assert response.redirect_chain[-1][0] == "/submit/thanks/"
    assert "Thank you" in response.content.decode()
    listing = Practitioner.objects.get()
    assert (listing.name, listing.status, listing.source) == ("Jane Roe", "pending", "submission")
    location = listing.locations.get()
    assert (location.state, location.postal_code) == ("TN", "38157")
    record = listing.certification_records.get()
    assert (record.certification.slug, record.credential_number) == ("art", "ART-12345")


def test_a_submission_appears_nowhere_public_until_published(client):
    client.post("/submit/", submission_data())
    listing = Practitioner.objects.get()
    assert client.get(listing.get_absolute_url()).status_code == 404
    search = client.get("/search/?zip=38157&radius=25")
    assert "Jane Roe" not in search.content.decode()
    api = client.get("/api/practitioners/?zip=38157&radius=25").json()
    assert api["results"] == []


def test_bad_input_is_shown_next_to_the_field_and_what_was_typed_is_kept(client):
    response = client.post(
        "/submit/",
        submission_data(
            website="javascript:alert(1)",
            **{"clinic-0-postal_code": "ABCDE", "clinic-0-state": "Tennessee"},
        ),
    )
    assert response.status_code == 400
    assert "http:// or https://" in field_error(response, "id_website")
    assert "ZIP" in field_error(response, "id_clinic-0-postal_code")
    assert field_error(response, "id_clinic-0-state")
    html = response.content.decode()
    assert 'value="Jane Roe"' in html and 'value="ART-12345"' in html
    assert not Practitioner.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "x" * 201, "at most 200 characters"),
        ("bio", "x" * 5001, "at most 5000 characters"),
        ("website", "ftp://files.example.com/", "http:// or https://"),
        ("npi", "1234567890", "not a valid NPI"),
        ("name", "", "required"),
    ],
)
def test_each_field_is_validated(client, field, value, message):
    response = client.post("/submit/", submission_data(**{field: value}))
    assert response.status_code == 400
    assert message in field_error(response, f"id_{field}")
    assert not Practitioner.objects.exists()


def test_a_submission_needs_at_least_one_clinic(client):
    data = submission_data(**{f"clinic-0-{k}": "" for k in ("name", "address_line1", "city")})
    data.update({"clinic-0-state": "", "clinic-0-postal_code": ""})
    response = client.post("/submit/", data)
    assert response.status_code == 400
    assert "at least 1" in response.content.decode()
    assert not Practitioner.objects.exists()


def test_a_valid_npi_is_kept_on_the_submission(client):
    client.post("/submit/", submission_data(npi=VALID_NPI))
    assert Practitioner.objects.get().npi == VALID_NPI


def test_the_confirmation_never_reveals_that_a_listing_already_exists(client):
    existing = practitioner_near_zip("38157", name="Jane Roe", npi=VALID_NPI)
    existing_reply = client.post("/submit/", submission_data(npi=VALID_NPI), follow=True)
    new_reply = client.post("/submit/", submission_data(name="Someone New", npi=""), follow=True)
    assert existing_reply.redirect_chain == new_reply.redirect_chain
    assert existing_reply.content == new_reply.content
    assert Practitioner.objects.filter(status="pending").count() == 2
    assert Practitioner.objects.get(pk=existing.pk).status == "published"


def test_a_bot_filling_the_honeypot_is_thanked_and_nothing_is_saved(client):
    response = client.post("/submit/", submission_data(company_url="http://spam.example"))
    assert response.status_code == 302 and response["Location"] == "/submit/thanks/"
    assert not Practitioner.objects.exists()


@override_settings(PUBLIC_FORM_RATE_LIMIT=3)
def test_every_post_counts_toward_the_rate_limit_and_the_next_gets_a_readable_429(client):
    assert client.post("/submit/", submission_data(name="")).status_code == 400  # invalid
    assert client.post("/submit/", submission_data()).status_code == 302
    assert client.post("/submit/", submission_data(company_url="x")).status_code == 302
    response = client.post("/submit/", submission_data(name="Fourth Try"))
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert response["Retry-After"] == "3600"
    assert not Practitioner.objects.filter(name="Fourth Try").exists()
    # Reading the form is never limited, and another address has its own count.
    assert client.get("/submit/").status_code == 200
    other = Client(REMOTE_ADDR="10.0.0.2")
    assert other.post("/submit/", submission_data(name="Other")).status_code == 302


@override_settings(PUBLIC_FORM_RATE_LIMIT=1)
def test_a_429_keeps_what_the_person_typed_on_screen(client):
    assert client.post("/submit/", submission_data()).status_code == 302
    response = client.post("/submit/", submission_data(name="Second Practice", bio="Long text"))
    assert response.status_code == 429
    assert "Too many attempts" in browsing.text_of(response, "#rate-limit")
    kept = browsing.form(response, "form.submission-form")
    assert kept.value("name") == "Second Practice"
    assert kept.value("bio") == "Long text"
    assert kept.value("clinic-0-address_line1") == "5050 Poplar Ave"
    listing = practitioner_at(35.11, -89.90)
    report = client.post(
        f"/practitioners/{listing.slug}/report/", {"kind": "closed", "details": "Moved away"}
    )
    assert report.status_code == 429
    assert browsing.form(report, "form").value("details") == "Moved away"


@override_settings(PUBLIC_FORM_RATE_LIMIT=2)
def test_the_rate_limit_is_shared_by_both_public_forms(client):
    listing = practitioner_at(35.11, -89.90)
    report_url = f"/practitioners/{listing.slug}/report/"
    assert client.post(report_url, {"kind": "closed"}).status_code == 302
    assert client.post("/submit/", submission_data()).status_code == 302
    assert client.post(report_url, {"kind": "closed"}).status_code == 429
    assert ListingReport.objects.count() == 1


# --- Bios are plain text ----------------------------------------------------------------------


def test_html_in_a_bio_is_shown_inert_on_the_profile(client):
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)> Line two'
    client.post("/submit/", submission_data(bio=attack))
    listing = Practitioner.objects.get()
    listing.status = Practitioner.Status.PUBLISHED
    listing.save()
    html = client.get(listing.get_absolute_url()).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# --- "Report a problem with this listing" ----------------------------------------------------


def test_every_profile_links_to_the_report_form(client):
    listing = practitioner_at(35.11, -89.90)
    html = client.get(listing.get_absolute_url()).content.decode()
    assert f'href="/practitioners/{listing.slug}/report/"' in html
    assert "Report a problem with this listing" in html


def test_a_report_is_saved_for_staff_and_the_person_thanked(client):
    listing = practitioner_at(35.11, -89.90)
    response = client.post(
        f"/practitioners/{listing.slug}/report/",
        {"kind": "wrong_address", "details": "Moved to Union Ave", "contact_email": "a@b.co"},
        follow=True,
    )
    assert "Thank you for your report" in response.content.decode()
    report = ListingReport.objects.get()
    assert (report.practitioner, report.kind, report.details) == (
        listing,
        "wrong_address",
        "Moved to Union Ave",
    )
    assert report.resolved_at is None


def test_a_report_with_bad_input_shows_the_errors_and_keeps_the_text(client):
    listing = practitioner_at(35.11, -89.90)
    response = client.post(
        f"/practitioners/{listing.slug}/report/",
        {"kind": "nonsense", "details": "Keep me", "contact_email": "not-an-email"},
    )
    assert response.status_code == 400
    assert field_error(response, "id_kind") and field_error(response, "id_contact_email")
    assert "Keep me" in response.content.decode()
    assert not ListingReport.objects.exists()


def test_a_bot_filling_the_report_honeypot_saves_nothing(client):
    listing = practitioner_at(35.11, -89.90)
    response = client.post(
        f"/practitioners/{listing.slug}/report/", {"kind": "closed", "company_url": "x"}
    )
    assert response.status_code == 302
    assert not ListingReport.objects.exists()


@pytest.mark.parametrize("status", ["pending", "suspended", "draft"])
def test_unpublished_listings_never_show_in_search_profile_report_form_or_api(client, status):
    hidden = practitioner_near_zip("38117", name="Hidden Person", status=status)
    shown = practitioner_near_zip("38117", name="Shown Person")
    search = client.get("/search/?zip=38117&radius=25").content.decode()
    assert "Shown Person" in search and "Hidden Person" not in search
    assert client.get(hidden.get_absolute_url()).status_code == 404
    assert client.get(f"/practitioners/{hidden.slug}/report/").status_code == 404
    api = client.get("/api/practitioners/?zip=38117&radius=25").json()
    assert [r["name"] for r in api["results"]] == [shown.name]
