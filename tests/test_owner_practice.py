"""The owner keeps their practice details current on /my-listing/: languages and payment, each
clinic's accessibility, weekly opening hours (an hours editor that needs no JavaScript) and
temporary closure, and the new-patient status. Saving a group, or pressing "still right"
without changing anything, dates it today, and the public profile says "confirmed <month>".
Edits are live at once (as every owner edit), in the history with the owner as author. Bad input
is a 400 that keeps what was typed; another owner's clinic is a 404 and changes nothing. The
admin's hours editor writes through the same service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import dateformat, timezone

from practitioners.curation import owners
from practitioners.curation.history import listing_timeline
from practitioners.models import Location, Practitioner
from practitioners.practice import Language, OpeningHours, Payer, interval
from tests.browsing import follow, form, submit, text_of
from tests.factories import LocationFactory, practitioner_at
from tests.test_accounts import browser_test
from tests.test_browser import (  # noqa: F401 - fixtures, used by name
    browser,
    map_settings,
    open_page,
)
from tests.test_my_listing import owner_of, session

pytestmark = pytest.mark.django_db

LONG_AGO = dt.date(2025, 1, 15)


def this_month() -> str:
    return dateformat.format(timezone.localdate(), "F Y")


@pytest.fixture
def listing():
    return practitioner_at(35.11, -89.90, name="Jane Doe", slug="jane-doe-memphis", bio="Old bio")


@pytest.fixture
def jane(listing):
    return owner_of(listing, "jane@clinic.example")


@pytest.fixture
def other_listing():
    return practitioner_at(35.2, -89.8, name="Other Person", slug="other-person")


@pytest.fixture
def other_owner(other_listing):
    return owner_of(other_listing, "other@clinic.example")


@pytest.fixture
def spanish():
    return Language.objects.get_or_create(code="es", defaults={"name": "Spanish"})[0]


@pytest.fixture
def asl():
    return Language.objects.get_or_create(code="ase", defaults={"name": "American Sign Language"})[
        0
    ]


@pytest.fixture
def medicare():
    return Payer.objects.get_or_create(slug="medicare", defaults={"name": "Medicare"})[0]


def dashboard(client: Client):
    page = client.get("/my-listing/")
    assert page.status_code == 200
    return page


def profile(listing: Practitioner):
    page = Client().get(listing.get_absolute_url())
    assert page.status_code == 200
    return page


def hours_page(client: Client, location: Location):
    """The clinic's hours editor, reached the way a person does: its link on the dashboard."""
    page = follow(client, dashboard(client), selector=f"#clinic-{location.pk} .clinic-hours-link")
    assert page.status_code == 200
    return page


def hours_of(location: Location) -> list[tuple[int, str, str]]:
    return [
        (h.weekday, f"{h.opens:%H:%M}", f"{h.closes:%H:%M}")
        for h in OpeningHours.objects.filter(location=location).order_by("weekday", "opens")
    ]


def fill_row(filled, row: int, weekday: str, opens: str, closes: str):
    return (
        filled.set(f"hours-{row}-weekday", weekday)
        .set(f"hours-{row}-opens", opens)
        .set(f"hours-{row}-closes", closes)
    )


# --- Languages and payment ----------------------------------------------------------------


def test_the_owner_saves_languages_and_payment_and_the_profile_says_confirmed_this_month(
    listing, jane, spanish, asl, medicare
):
    client = session(jane)
    filled = (
        form(dashboard(client), "#practice-form")
        .set("languages", [str(spanish.pk), str(asl.pk)])
        .set("payers", [str(medicare.pk)])
        .set("self_pay", "on")
        .set("self_pay_min", "80")
        .set("self_pay_max", "120")
        .set("hsa_fsa", "on")
    )
    saved = submit(client, filled)
    assert saved.status_code == 302
    after = client.get(saved["Location"])
    assert "Saved: your listing shows it now" in text_of(after, "main")
    checked = text_of(after, "#practice-checked")
    assert f"Languages: confirmed {this_month()}" in checked
    assert f"Payment: confirmed {this_month()}" in checked
    # The form shows what was saved.
    again = form(after, "#practice-form")
    assert sorted(v for k, v in again.fields if k == "languages") == sorted(
        [str(spanish.pk), str(asl.pk)]
    )
    assert again.value("self_pay_min") == "80"

    public = profile(listing)
    assert f"Languages: American Sign Language, Spanish (confirmed {this_month()})" in text_of(
        public, ".languages"
    )
    payment = text_of(public, ".payment")
    assert "Insurance accepted: Medicare" in payment
    assert "Self-pay welcome: a first visit is typically $80-$120" in payment
    assert "HSA/FSA cards accepted" in payment and "Sliding-scale" not in payment
    assert f"Payment confirmed {this_month()}." in text_of(public, "main")

    edit = next(e for e in listing_timeline(listing.pk) if e.reason.startswith("Owner: edited"))
    assert edit.reason == "Owner: edited languages, payment"
    assert edit.author == "jane@clinic.example"


def test_unticking_a_language_and_a_payment_option_takes_them_off_the_profile(
    listing, jane, spanish, medicare
):
    listing.languages.set([spanish])
    listing.payers.set([medicare])
    Practitioner.objects.filter(pk=listing.pk).update(sliding_scale=True)
    client = session(jane)
    filled = (
        form(dashboard(client), "#practice-form")
        .set("languages", [])
        .set("payers", [])
        .set("sliding_scale", [])
    )
    assert submit(client, filled).status_code == 302
    public = profile(listing)
    assert "Spanish" not in text_of(public, "main")
    assert "Medicare" not in text_of(public, "main")
    assert "Sliding-scale" not in text_of(public, "main")


def test_saving_the_forms_as_they_are_confirms_them_without_changing_anything(
    listing, jane, spanish
):
    listing.languages.set([spanish])
    Practitioner.objects.filter(pk=listing.pk).update(
        languages_checked_on=LONG_AGO,
        payment_checked_on=LONG_AGO,
        new_patients_checked_on=LONG_AGO,
        new_patients="existing_only",
    )
    client = session(jane)
    saved = submit(client, form(dashboard(client), "#practice-form"))
    assert "Nothing changed; your languages and payment show as confirmed" in text_of(
        client.get(saved["Location"]), "main"
    )
    details = submit(client, form(dashboard(client), "#details-form"))
    assert details.status_code == 302
    listing.refresh_from_db()
    today = timezone.localdate()
    assert (listing.languages_checked_on, listing.payment_checked_on) == (today, today)
    assert listing.new_patients_checked_on == today  # the details form holds the status
    assert listing.new_patients == "existing_only"
    assert list(listing.languages.all()) == [spanish]
    assert f"(confirmed {this_month()})" in text_of(profile(listing), ".new-patients")


def test_still_right_dates_new_patients_languages_and_payment_today_and_changes_nothing(
    listing, jane, spanish
):
    listing.languages.set([spanish])
    Practitioner.objects.filter(pk=listing.pk).update(
        languages_checked_on=LONG_AGO,
        payment_checked_on=LONG_AGO,
        new_patients_checked_on=LONG_AGO,
        self_pay=True,
        self_pay_min=60,
    )
    public_before = text_of(profile(listing), ".languages")
    assert "January 2025" in public_before
    client = session(jane)
    page = dashboard(client)
    assert "confirmed January 2025" in text_of(page, "#practice-checked")
    confirmed = submit(client, form(page, "#practice-confirm-form"))
    assert confirmed.status_code == 302
    assert "show as confirmed this month" in text_of(client.get(confirmed["Location"]), "main")
    listing.refresh_from_db()
    today = timezone.localdate()
    assert (
        listing.languages_checked_on,
        listing.payment_checked_on,
        listing.new_patients_checked_on,
    ) == (today, today, today)
    assert (listing.self_pay, listing.self_pay_min, list(listing.languages.all())) == (
        True,
        60,
        [spanish],
    )
    public = profile(listing)
    assert f"Spanish (confirmed {this_month()})" in text_of(public, ".languages")
    assert f"Payment confirmed {this_month()}." in text_of(public, "main")
    reasons = [e.reason for e in listing_timeline(listing.pk)]
    assert "Owner: confirmed new patients, languages, payment" in reasons


# --- A clinic's hours, closure and access --------------------------------------------------


def test_the_owner_sets_a_clinics_hours_and_access_and_the_profile_shows_them_confirmed(
    listing, jane
):
    clinic = listing.locations.get()
    client = session(jane)
    page = hours_page(client, clinic)
    assert "America/Chicago" in text_of(page, "#hours-help")
    filled = form(page, "#clinic-practice-form").set("wheelchair_entrance", "on")
    filled = fill_row(filled, 0, "0", "08:00", "12:00")
    filled = fill_row(filled, 1, "0", "13:00", "18:00")
    filled = fill_row(filled, 2, "4", "18:00", "01:00")  # Friday, past midnight
    saved = submit(client, filled)
    assert saved.status_code == 302
    after = client.get(saved["Location"])
    assert "Saved: your listing shows the hours and access now" in text_of(after, "main")
    summary = text_of(after, f"#clinic-{clinic.pk} .clinic-hours")
    assert f"Mo 08:00-12:00,13:00-18:00; Fr 18:00-01:00 (confirmed {this_month()})" in summary
    assert f"Wheelchair-accessible entrance (confirmed {this_month()})" in summary

    assert hours_of(clinic) == [(0, "08:00", "12:00"), (0, "13:00", "18:00"), (4, "18:00", "01:00")]
    late = OpeningHours.objects.get(location=clinic, weekday=4)
    assert (late.start_minute, late.end_minute) == (4 * 1440 + 18 * 60, 5 * 1440 + 60)

    public = profile(listing)
    assert f"Opening hours (confirmed {this_month()})" in text_of(public, ".weekly-hours")
    assert "Monday 8:00-12:00, 13:00-18:00" in text_of(public, ".weekly-hours")
    assert "Friday 18:00-1:00" in text_of(public, ".weekly-hours")
    assert f"Wheelchair-accessible entrance (confirmed {this_month()})" in text_of(
        public, ".access"
    )

    # Back on the editor: the three intervals, then three empty rows for more.
    again = hours_page(client, clinic)
    editor = form(again, "#clinic-practice-form")
    assert editor.value("hours-TOTAL_FORMS") == "6"
    assert editor.value("hours-2-opens") == "18:00" and editor.value("hours-3-opens") == ""
    # Removing one interval and adding another; the rest stays.
    changed = fill_row(editor.set("hours-1-DELETE", "on"), 3, "5", "09:00", "13:00")
    assert submit(client, changed).status_code == 302
    assert hours_of(clinic) == [(0, "08:00", "12:00"), (4, "18:00", "01:00"), (5, "09:00", "13:00")]


def test_a_temporary_closure_shows_until_the_clinic_reopens_and_can_be_cleared(listing, jane):
    clinic = listing.locations.get()
    OpeningHours.objects.bulk_create(
        [interval(clinic.pk, day, dt.time(8), dt.time(17)) for day in range(5)]
    )
    reopens = timezone.localdate() + dt.timedelta(days=20)
    client = session(jane)
    filled = form(hours_page(client, clinic), "#clinic-practice-form").set(
        "reopens_on", reopens.isoformat()
    )
    assert submit(client, filled).status_code == 302
    clinic.refresh_from_db()
    assert clinic.reopens_on == reopens and clinic.hours_checked_on == timezone.localdate()
    shown = text_of(profile(listing), ".hours-today")
    assert shown == f"Temporarily closed until {reopens:%B} {reopens.day}"
    assert "Temporarily closed until" in text_of(dashboard(client), f"#clinic-{clinic.pk}")

    cleared = form(hours_page(client, clinic), "#clinic-practice-form").set("reopens_on", "")
    assert submit(client, cleared).status_code == 302
    clinic.refresh_from_db()
    assert clinic.reopens_on is None
    assert "Temporarily closed" not in text_of(profile(listing), "main")
    assert len(hours_of(clinic)) == 5  # the week was kept as it was


def test_still_right_dates_a_clinics_hours_and_access_today_and_changes_nothing(listing, jane):
    clinic = listing.locations.get()
    OpeningHours.objects.bulk_create([interval(clinic.pk, 1, dt.time(9), dt.time(17))])
    Location.objects.filter(pk=clinic.pk).update(
        parking=True, hours_checked_on=LONG_AGO, accessibility_checked_on=LONG_AGO
    )
    assert "(confirmed January 2025)" in text_of(profile(listing), ".weekly-hours")
    client = session(jane)
    # From the dashboard ...
    pressed = submit(client, form(dashboard(client), f"#clinic-{clinic.pk} .clinic-confirm"))
    assert pressed.status_code == 302
    assert "hours and access show as confirmed this month" in text_of(
        client.get(pressed["Location"]), "main"
    )
    clinic.refresh_from_db()
    today = timezone.localdate()
    assert (clinic.hours_checked_on, clinic.accessibility_checked_on) == (today, today)
    assert clinic.parking and hours_of(clinic) == [(1, "09:00", "17:00")]
    public = profile(listing)
    assert f"Opening hours (confirmed {this_month()})" in text_of(public, ".weekly-hours")
    assert f"Parking on site (confirmed {this_month()})" in text_of(public, ".access")
    # ... and from the editor's own button.
    Location.objects.filter(pk=clinic.pk).update(hours_checked_on=LONG_AGO)
    assert (
        submit(client, form(hours_page(client, clinic), "#clinic-confirm-form")).status_code == 302
    )
    clinic.refresh_from_db()
    assert clinic.hours_checked_on == today and hours_of(clinic) == [(1, "09:00", "17:00")]


# --- Bad input: a 400 that says what is wrong and keeps what was typed --------------------------


def test_a_price_range_upside_down_or_not_a_number_is_a_400_that_keeps_the_form(
    listing, jane, spanish
):
    client = session(jane)
    before = (listing.self_pay_min, listing.self_pay_max, listing.payment_checked_on)
    for low, high, message in [
        ("200", "100", "The upper price is below the lower one."),
        ("eighty", "", "Enter a whole number."),
        ("-5", "", "greater than or equal to 0"),
    ]:
        filled = (
            form(dashboard(client), "#practice-form")
            .set("languages", [str(spanish.pk)])
            .set("self_pay", "on")
            .set("self_pay_min", low)
            .set("self_pay_max", high)
        )
        refused = submit(client, filled)
        assert refused.status_code == 400, (low, high)
        assert message in text_of(refused, "#practice-form")
        kept = form(refused, "#practice-form")
        assert kept.value("self_pay_min") == low and kept.value("languages") == str(spanish.pk)
        assert kept.value("self_pay") == "on"
    listing.refresh_from_db()
    assert (listing.self_pay_min, listing.self_pay_max, listing.payment_checked_on) == before
    assert not listing.languages.exists()


def test_an_unknown_language_or_payer_is_a_400_not_an_error_page(listing, jane):
    client = session(jane)
    for field in ("languages", "payers"):
        refused = client.post("/my-listing/practice/", {field: ["999999"]})
        assert refused.status_code == 400
        assert "Select a valid choice" in text_of(refused, "#practice-form")
        refused = client.post("/my-listing/practice/", {field: ["not-a-number"]})
        assert refused.status_code == 400


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("0", "08:00", ""), "Give the closing time, like 18:00."),
        (("", "08:00", "12:00"), "Choose the day these hours are for."),
        (("0", "09:00", "09:00"), "opens and closes at 9:00"),
        (("0", "25:00", "26:00"), "Enter a valid time."),
        (("9", "08:00", "12:00"), "Select a valid choice."),
    ],
)
def test_a_bad_interval_is_a_400_naming_the_problem_and_nothing_is_saved(
    listing, jane, row, message
):
    clinic = listing.locations.get()
    OpeningHours.objects.bulk_create([interval(clinic.pk, 2, dt.time(10), dt.time(14))])
    client = session(jane)
    filled = fill_row(
        form(hours_page(client, clinic), "#clinic-practice-form").set("parking", "on"), 1, *row
    )
    refused = submit(client, filled)
    assert refused.status_code == 400
    assert "needs correcting" in text_of(refused, "#hours-problem")
    assert message in text_of(refused, "#hours-row-2")
    kept = form(refused, "#clinic-practice-form")
    assert kept.value("hours-1-opens") == row[1] and kept.value("parking") == "on"
    clinic.refresh_from_db()
    assert not clinic.parking and clinic.hours_checked_on is None
    assert hours_of(clinic) == [(2, "10:00", "14:00")]


def test_a_closure_date_that_has_come_or_is_not_a_date_is_a_400(listing, jane):
    clinic = listing.locations.get()
    client = session(jane)
    for value, message in [
        (timezone.localdate().isoformat(), "leave the date empty if the clinic is open again"),
        ("2020-02-30", "Enter a valid date."),
    ]:
        filled = form(hours_page(client, clinic), "#clinic-practice-form").set("reopens_on", value)
        refused = submit(client, filled)
        assert refused.status_code == 400
        assert message in text_of(refused, "#closure")
    clinic.refresh_from_db()
    assert clinic.reopens_on is None


def test_a_forged_hours_form_is_a_400_and_never_an_error_page(listing, jane):
    clinic = listing.locations.get()
    client = session(jane)
    url = f"/my-listing/clinics/{clinic.pk}/hours/"
    # Without the formset's management fields.
    assert client.post(url, {"parking": "on"}).status_code == 400
    # Far more rows than a week has.
    rows = {"hours-TOTAL_FORMS": "1000", "hours-INITIAL_FORMS": "0"}
    for n in range(60):
        rows |= {
            f"hours-{n}-weekday": "0",
            f"hours-{n}-opens": "08:00",
            f"hours-{n}-closes": "09:00",
        }
    refused = client.post(url, rows)
    assert refused.status_code == 400
    assert "at most 50" in text_of(refused, "#hours-editor")
    assert hours_of(clinic) == []


# --- Whose listing ----------------------------------------------------------------------------


def test_another_owners_clinic_answers_404_and_changes_nothing(
    listing, jane, other_listing, other_owner
):
    theirs = other_listing.locations.get()
    OpeningHours.objects.bulk_create([interval(theirs.pk, 0, dt.time(8), dt.time(12))])
    client = session(jane)
    data = {
        "wheelchair_entrance": "on",
        "hours-TOTAL_FORMS": "1",
        "hours-INITIAL_FORMS": "0",
        "hours-0-weekday": "6",
        "hours-0-opens": "10:00",
        "hours-0-closes": "11:00",
    }
    assert client.get(f"/my-listing/clinics/{theirs.pk}/hours/").status_code == 404
    assert client.post(f"/my-listing/clinics/{theirs.pk}/hours/", data).status_code == 404
    assert client.post(f"/my-listing/clinics/{theirs.pk}/hours/confirm/").status_code == 404
    theirs.refresh_from_db()
    assert not theirs.wheelchair_entrance and theirs.hours_checked_on is None
    assert hours_of(theirs) == [(0, "08:00", "12:00")]
    # The other owner's own page still shows them their hours.
    assert "08:00-12:00" in text_of(dashboard(session(other_owner)), f"#clinic-{theirs.pk}")


def test_another_listings_ids_in_the_post_body_change_only_your_own_listing(
    listing, jane, other_listing, other_owner, spanish
):
    client = session(jane)
    forged = {"practitioner": other_listing.pk, "practitioner_id": other_listing.pk}
    client.post("/my-listing/practice/", {"languages": [str(spanish.pk)], **forged})
    client.post("/my-listing/practice/confirm/", forged)
    other_listing.refresh_from_db()
    assert not other_listing.languages.exists() and other_listing.languages_checked_on is None
    listing.refresh_from_db()
    assert list(listing.languages.all()) == [spanish]


def test_signing_in_and_owning_a_listing_are_required(listing, other_listing):
    clinic = listing.locations.get()
    urls = [
        "/my-listing/practice/",
        "/my-listing/practice/confirm/",
        f"/my-listing/clinics/{clinic.pk}/hours/",
        f"/my-listing/clinics/{clinic.pk}/hours/confirm/",
    ]
    for url in urls:
        answer = Client().post(url, {})
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    no_listing = get_user_model().objects.create_user("x@example.org", "x@example.org", "pw-42-x")
    for url in urls:
        assert session(no_listing).post(url, {}).status_code == 404, url
    assert session(no_listing).get(urls[2]).status_code == 404
    listing.refresh_from_db()
    assert listing.languages_checked_on is None


def test_the_services_refuse_a_listing_or_clinic_the_user_does_not_own(
    listing, jane, other_listing, other_owner
):
    theirs = other_listing.locations.get()
    with pytest.raises(owners.NotYours):
        owners.update_practice(practitioner=other_listing, owner=jane, payment={"self_pay": True})
    with pytest.raises(owners.NotYours):
        owners.update_clinic_practice(
            practitioner=listing, owner=jane, location_id=theirs.pk, accessibility={}
        )
    with pytest.raises(owners.NotYours):
        owners.confirm_practice(practitioner=listing, owner=jane, location_id=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.accessibility_checked_on is None


# --- Queries ----------------------------------------------------------------------------------


def test_the_dashboard_and_the_hours_editor_run_a_fixed_number_of_queries(
    listing, jane, spanish, asl, medicare, django_assert_max_num_queries
):
    client = session(jane)
    clinic = listing.locations.get()

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    dashboard_queries = count("/my-listing/")
    editor_queries = count(f"/my-listing/clinics/{clinic.pk}/hours/")
    listing.languages.set([spanish, asl])
    listing.payers.set([medicare])
    for _ in range(4):
        extra = LocationFactory(practitioner=listing)
        OpeningHours.objects.bulk_create(
            [interval(extra.pk, day, dt.time(8), dt.time(12)) for day in range(6)]
        )
    OpeningHours.objects.bulk_create(
        [interval(clinic.pk, day, dt.time(h), dt.time(h + 1)) for day in range(7) for h in (8, 14)]
    )
    with django_assert_max_num_queries(dashboard_queries):
        page = client.get("/my-listing/")
    assert text_of(page, "#my-clinics").count("Mo-Sa 08:00-12:00") == 4
    with django_assert_max_num_queries(editor_queries):
        assert client.get(f"/my-listing/clinics/{clinic.pk}/hours/").status_code == 200


# --- The admin writes hours through the same service ---------------------------------------


def test_staff_editing_hours_or_payment_in_the_admin_date_them_unless_they_typed_a_date(
    listing,
):
    staff = get_user_model().objects.create_superuser("curator", "c@example.com", "pw")
    admin = Client()
    admin.force_login(staff)
    clinic = listing.locations.get()
    page = admin.get(f"/admin/practitioners/location/{clinic.pk}/change/")
    filled = (
        form(page, "#location_form")
        .set("opening_hours-0-weekday", "2")
        .set("opening_hours-0-opens", "07:30")
        .set("opening_hours-0-closes", "15:00")
    )
    assert submit(admin, filled, button="Save").status_code == 302
    clinic.refresh_from_db()
    assert clinic.hours_checked_on == timezone.localdate()
    assert clinic.accessibility_checked_on is None  # access was not touched
    assert hours_of(clinic) == [(2, "07:30", "15:00")]
    saved = OpeningHours.objects.get(location=clinic)
    assert (saved.start_minute, saved.end_minute) == (2 * 1440 + 450, 2 * 1440 + 900)

    page = admin.get(f"/admin/practitioners/practitioner/{listing.pk}/change/")
    filled = form(page, "#practitioner_form").set("sliding_scale", "on")
    assert submit(admin, filled, button="Save").status_code == 302
    listing.refresh_from_db()
    assert listing.sliding_scale and listing.payment_checked_on == timezone.localdate()
    assert listing.languages_checked_on is None
    page = admin.get(f"/admin/practitioners/practitioner/{listing.pk}/change/")
    filled = (
        form(page, "#practitioner_form")
        .set("hsa_fsa", "on")
        .set("payment_checked_on", "2026-05-02")
    )
    assert submit(admin, filled, button="Save").status_code == 302
    listing.refresh_from_db()
    assert listing.payment_checked_on == dt.date(2026, 5, 2)


# --- In a browser, without JavaScript --------------------------------------------------------


@browser_test
def test_in_a_browser_without_javascript_the_owner_types_hours_and_sees_them_on_the_profile(
    open_page, live_server, client, settings
):
    listing = practitioner_at(35.11, -89.90, name="Jane Doe", slug="jane-doe-memphis")
    jane = owner_of(listing, "jane@clinic.example")
    client.force_login(jane, backend="allauth.account.auth_backends.AuthenticationBackend")
    page = open_page("/static/css/site.css", java_script_enabled=False)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.goto("/my-listing/")
    page.get_by_role("link", name="Opening hours, closure and access: Clinic").click()
    first = page.get_by_role("group", name="New hours 1")
    first.get_by_label("Day").select_option(label="Tuesday")
    first.get_by_label("Opens").fill("08:00")
    first.get_by_label("Closes").fill("17:30")
    second = page.get_by_role("group", name="New hours 2")
    second.get_by_label("Day").select_option(label="Saturday")
    second.get_by_label("Opens").fill("09:00")
    second.get_by_label("Closes").fill("13:00")
    page.get_by_label("Accessible restroom").check()
    page.get_by_role("button", name="Save hours and access").click()
    page.wait_for_url("**/my-listing/")
    assert "Saved: your listing shows the hours and access now" in page.locator("main").inner_text()
    page.goto(listing.get_absolute_url())
    hours = page.locator(".weekly-hours")
    hours.locator("summary").click()  # <details> opens without JavaScript
    shown = hours.inner_text()
    assert f"Opening hours (confirmed {this_month()})" in shown
    assert "8:00-17:30" in hours.locator("tr", has_text="Tuesday").inner_text()
    assert "9:00-13:00" in hours.locator("tr", has_text="Saturday").inner_text()
    assert "Accessible restroom" in page.locator(".access").inner_text()
    assert not page.script_errors
