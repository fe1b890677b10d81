"""Languages, payment, access, hours and new-patient status: the data, its display, the
four-value migration, the admin's hours editor and the demo data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from practitioners import practice
from practitioners.ingest.csv import import_practitioners_from_text
from practitioners.ingest.export import PractitionerResource
from practitioners.models import Location, Practitioner
from practitioners.practice import Language, NewPatients, OpeningHours, Payer
from practitioners.search import index as search_index
from tests.factories import LocationFactory, practitioner_near_zip

pytestmark = pytest.mark.django_db
T = dt.time
CHICAGO = ZoneInfo("America/Chicago")


def at(zone: str, *args: int) -> dt.datetime:
    """An instant, written as the wall-clock time in ``zone``."""
    return dt.datetime(*args, tzinfo=ZoneInfo(zone))


def hours(location: Location, *rows: tuple[int, dt.time, dt.time]) -> list[OpeningHours]:
    return [
        OpeningHours.objects.create(location=location, weekday=d, opens=a, closes=b)
        for d, a, b in rows
    ]


@pytest.fixture
def frozen(monkeypatch):
    """Set the clock the pages read (``django.utils.timezone.now``)."""

    def freeze(moment: dt.datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return freeze


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- The clinic's time zone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "zip_code", "zone"),
    [
        ("TN", "38117", "America/Chicago"),  # Memphis
        ("TN", "37902", "America/New_York"),  # Knoxville
        ("FL", "33131", "America/New_York"),  # Miami
        ("FL", "32501", "America/Chicago"),  # Pensacola
        ("TX", "79901", "America/Denver"),  # El Paso
        ("ID", "83814", "America/Los_Angeles"),  # Coeur d'Alene
        ("AZ", "85004", "America/Phoenix"),
        ("AK", "99501", "America/Anchorage"),
        ("HI", "96813", "Pacific/Honolulu"),
    ],
)
def test_a_clinics_time_zone_follows_its_state_and_where_a_state_spans_two_its_zip(
    state, zip_code, zone
):
    assert practice.clinic_time_zone_name(state, zip_code) == zone


def test_the_searchs_time_zone_sql_picks_the_zone_the_pages_show_for_every_prefix_and_state():
    """The search judges "open now" and closures by the zone the SQL picks; the pages by
    clinic_time_zone_name. Every row of the table, a ZIP prefix whose state disagrees with it,
    and an unknown state, on this database."""
    cases = [(state, "00000") for state in practice._STATE_ZONES]
    cases += [("ZZ", f"{prefix}01") for prefix in practice._ZIP3_ZONES]
    cases += [("TN", "37902"), ("XX", "99999"), ("", "")]
    values = {name: name for name in practice.time_zone_names()}
    case_sql, case_params = practice.time_zone_case_sql(
        values, state="clinic.state", postal_code="clinic.postal_code"
    )
    with connection.cursor() as cursor:
        for state, zip_code in cases:
            cursor.execute(
                f"SELECT {case_sql} FROM (SELECT %s AS state, %s AS postal_code) clinic",
                [*case_params, state, zip_code],
            )
            assert cursor.fetchone()[0] == practice.clinic_time_zone_name(state, zip_code), (
                state,
                zip_code,
            )


# --- Hours ------------------------------------------------------------------------------------


def test_hours_today_say_open_with_every_interval_or_closed_today():
    clinic = LocationFactory()
    week = hours(clinic, (0, T(8), T(12)), (0, T(13), T(18)), (2, T(9), T(17)))
    monday = at("America/Chicago", 2026, 6, 1, 7, 0)
    tuesday = at("America/Chicago", 2026, 6, 2, 12, 0)
    assert practice.todays_hours(clinic, week, monday).text == "Open today 8:00-12:00, 13:00-18:00"
    assert practice.todays_hours(clinic, week, tuesday).text == "Closed today"
    assert practice.todays_hours(clinic, [], monday).text == ""  # no hours listed: say nothing


def test_today_is_the_clinics_own_day_not_the_servers():
    honolulu = LocationFactory(state="HI", postal_code="96813", city="Honolulu")
    week = hours(honolulu, (0, T(8), T(17)))
    # Tuesday 02:00 in Memphis is still Monday 21:00 in Honolulu.
    tuesday_in_memphis = at("America/Chicago", 2026, 6, 2, 2, 0)
    assert practice.todays_hours(honolulu, week, tuesday_in_memphis).text == "Open today 8:00-17:00"


def test_an_interval_past_midnight_is_open_after_midnight_into_the_next_day():
    clinic = LocationFactory()
    # Saturday 22:00 to Sunday 02:00, and Sunday 23:00 to Monday 01:00 (past the week's end).
    week = hours(clinic, (5, T(22), T(2)), (6, T(23), T(1)))
    chicago = "America/Chicago"
    assert practice.is_open_at(clinic, week, at(chicago, 2026, 6, 6, 23, 30))  # Saturday
    assert practice.is_open_at(clinic, week, at(chicago, 2026, 6, 7, 1, 59))  # Sunday
    assert not practice.is_open_at(clinic, week, at(chicago, 2026, 6, 7, 2, 0))
    assert practice.is_open_at(clinic, week, at(chicago, 2026, 6, 8, 0, 30))  # Monday
    assert not practice.is_open_at(clinic, week, at(chicago, 2026, 6, 8, 1, 0))
    assert week[0].start_minute == 5 * 1440 + 22 * 60 and week[0].end_minute == 6 * 1440 + 120


def test_a_temporary_closure_hides_the_hours_until_the_day_it_reopens():
    clinic = LocationFactory(reopens_on=dt.date(2026, 6, 3))
    week = hours(clinic, *((d, T(8), T(18)) for d in range(7)))
    before = at("America/Chicago", 2026, 6, 2, 23, 59)
    reopened = at("America/Chicago", 2026, 6, 3, 8, 0)
    assert practice.todays_hours(clinic, week, before).text == "Temporarily closed until June 3"
    assert not practice.is_open_at(clinic, week, before)
    assert practice.todays_hours(clinic, week, reopened).text == "Open today 8:00-18:00"
    assert practice.is_open_at(clinic, week, reopened)


# --- Pages and the API ------------------------------------------------------------------------


def a_full_listing() -> Practitioner:
    listing = practitioner_near_zip(
        "38117",
        1,
        name="Full Details",
        new_patients=NewPatients.EXISTING_AND_FAMILY,
        new_patients_checked_on=dt.date(2026, 5, 12),
        self_pay=True,
        self_pay_min=80,
        self_pay_max=120,
        sliding_scale=True,
        hsa_fsa=True,
        payment_checked_on=dt.date(2026, 5, 2),
        gender="female",
    )
    listing.languages.set(Language.objects.filter(code__in=["es", "ase"]))
    listing.payers.set(Payer.objects.filter(slug__in=["aetna", "medicare"]))
    clinic = listing.locations.get()
    clinic.wheelchair_entrance = clinic.parking = True
    clinic.hours_checked_on = dt.date(2026, 5, 20)
    clinic.save()
    hours(clinic, (0, T(8), T(18)), (1, T(8), T(12)))
    return listing


def test_profile_shows_languages_payment_access_and_todays_hours_with_when_each_was_confirmed(
    client, frozen
):
    listing = a_full_listing()
    frozen(at("America/Chicago", 2026, 6, 1, 9, 0))  # a Monday
    text = text_of(client.get(listing.get_absolute_url()).content.decode())
    assert "Existing patients and their families (confirmed May 2026)" in text
    assert "Languages: American Sign Language, Spanish" in text
    assert "Insurance accepted: Aetna, Medicare" in text
    assert "a first visit is typically $80-$120" in text
    assert "Sliding-scale fees" in text and "HSA/FSA cards accepted" in text
    assert "Payment confirmed May 2026" in text
    assert "Open today 8:00-18:00" in text and "Opening hours (confirmed May 2026)" in text
    assert "Tuesday 8:00-12:00" in text and "Sunday Closed" in text
    assert "Wheelchair-accessible entrance · Parking on site" in text
    assert "female" not in text.lower()  # gender is a filter, never shown


def test_a_result_row_shows_the_hours_and_access_of_the_clinic_it_shows(client, frozen):
    listing = a_full_listing()
    frozen(at("America/Chicago", 2026, 6, 3, 15, 0))  # a Wednesday
    html = client.get("/search/?zip=38117").content.decode()
    row = text_of(html[html.index('id="result-1"') :])
    assert "Closed today" in row
    assert "Speaks American Sign Language, Spanish" in row
    assert "Takes Aetna, Medicare" in row and "Self-pay $80-$120 first visit" in row
    assert "Wheelchair-accessible entrance" in row and "Existing patients and their families" in row
    listing.locations.update(reopens_on=dt.date(2026, 6, 4))
    row = text_of(client.get("/search/?zip=38117").content.decode())
    assert "Temporarily closed until June 4" in row and "Closed today" not in row


def test_the_api_returns_the_practice_details_and_the_clinics_hours_today(client, frozen):
    a_full_listing()
    frozen(at("America/Chicago", 2026, 6, 1, 9, 0))
    result = client.get("/api/practitioners/", {"zip": "38117"}).json()["results"][0]
    assert result["new_patients"] == "existing_and_family"
    assert result["accepting_new_patients"] is False
    assert (result["languages"], result["insurance"]) == (["ase", "es"], ["aetna", "medicare"])
    assert (result["self_pay_min"], result["self_pay_max"], result["hsa_fsa"]) == (80, 120, True)
    location = result["location"]
    assert location["hours_today"] == "Open today 8:00-18:00"
    assert (location["wheelchair_entrance"], location["accessible_restroom"]) == (True, False)
    assert location["temporarily_closed_until"] is None
    assert "gender" not in result


# --- The four-value migration -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_four_value_migration_keeps_every_yes_and_no_in_listings_and_their_history():
    from importlib import import_module

    before = import_module("practitioners.migrations.0013_practice_details").Migration.dependencies
    latest = [("practitioners", "0014_drop_accepting_new_patients")]
    search_index.drop_sqlite_triggers(connection)  # as pre_migrate does
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        Old = old.get_model("practitioners", "Practitioner")
        OldHistory = old.get_model("practitioners", "HistoricalPractitioner")
        rows = {"Yes Listing": True, "No Listing": False}
        for name, accepting in rows.items():
            listing = Old.objects.create(
                name=name, slug=name.lower().replace(" ", "-"), accepting_new_patients=accepting
            )
            OldHistory.objects.create(
                id=listing.id,
                name=name,
                slug=listing.slug,
                accepting_new_patients=accepting,
                history_date=timezone.now(),
                history_type="+",
                created_at=timezone.now(),
                updated_at=timezone.now(),
            )
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        new = executor.loader.project_state(latest).apps
        New = new.get_model("practitioners", "Practitioner")
        NewHistory = new.get_model("practitioners", "HistoricalPractitioner")
        expected = {"Yes Listing": "accepting", "No Listing": "not_accepting"}
        assert dict(New.objects.values_list("name", "new_patients")) == expected
        assert dict(NewHistory.objects.values_list("name", "new_patients")) == expected
        assert new.get_model("practitioners", "Language").objects.filter(code="ase").exists()
        assert new.get_model("practitioners", "Payer").objects.filter(slug="medicare").exists()
    finally:
        # Back to the whole schema (later migrations' columns too), then the triggers that
        # name those columns.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        search_index.install_triggers(connection)
        search_index.recompute_all(connection)


# --- The admin's hours editor -----------------------------------------------------------------


def test_staff_edit_a_clinics_hours_with_time_fields_and_the_search_minutes_follow(client):
    staff = get_user_model().objects.create_superuser("curator", "c@example.com", "pw")
    client.force_login(staff)
    clinic = LocationFactory()
    url = f"/admin/practitioners/location/{clinic.pk}/change/"
    page = client.get(url).content.decode()
    assert re.search(r'<input type="time" name="opening_hours-0-opens"', page)
    data = {
        "practitioner": str(clinic.practitioner_id),
        "name": clinic.name,
        "address_line1": clinic.address_line1,
        "city": clinic.city,
        "state": clinic.state,
        "postal_code": clinic.postal_code,
        "latitude": str(clinic.latitude),
        "longitude": str(clinic.longitude),
        "wheelchair_entrance": "on",
        "reopens_on": "2026-06-03",
        "opening_hours-TOTAL_FORMS": "2",
        "opening_hours-INITIAL_FORMS": "0",
        "opening_hours-MIN_NUM_FORMS": "0",
        "opening_hours-MAX_NUM_FORMS": "1000",
        "opening_hours-0-weekday": "4",
        "opening_hours-0-opens": "18:00",
        "opening_hours-0-closes": "01:00",
        "opening_hours-1-weekday": "5",
        "opening_hours-1-opens": "09:00",
        "opening_hours-1-closes": "13:00",
    }
    assert client.post(url, data).status_code == 302
    clinic.refresh_from_db()
    assert clinic.wheelchair_entrance and clinic.reopens_on == dt.date(2026, 6, 3)
    saved = [(h.weekday, h.start_minute, h.end_minute) for h in clinic.opening_hours.all()]
    assert saved == [(4, 4 * 1440 + 18 * 60, 5 * 1440 + 60), (5, 5 * 1440 + 540, 5 * 1440 + 780)]


# --- Demo data --------------------------------------------------------------------------------


def test_demo_data_fills_every_detail_realistically_and_a_rerun_changes_nothing():
    from practitioners.ingest.demo import seed_demo
    from practitioners.ingest.demo_practice import fill_practice_details

    seed_demo()
    demo = Practitioner.objects.filter(source=Practitioner.Source.DEMO)
    values = set(demo.values_list("new_patients", flat=True))
    assert values == set(NewPatients.values)
    assert demo.filter(languages__code="es").exists() and demo.filter(payers__isnull=False).exists()
    assert demo.filter(self_pay=True, self_pay_min__isnull=False).exists()
    assert demo.filter(sliding_scale=True).exists() and demo.filter(hsa_fsa=True).exists()
    assert set(demo.values_list("gender", flat=True)) >= {"female", "male"}
    clinics = Location.objects.filter(practitioner__in=demo)
    assert clinics.filter(wheelchair_entrance=True).exists()
    assert clinics.filter(reopens_on__isnull=False).exists()
    assert OpeningHours.objects.filter(location__in=clinics, weekday__gte=5).exists()
    assert OpeningHours.objects.filter(location__in=clinics, closes__lt=T(4)).exists()
    counted = OpeningHours.objects.count()
    assert fill_practice_details() == 0 and OpeningHours.objects.count() == counted


# --- CSV import and export ----------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "practice-columns.csv"


def test_the_documented_example_file_imports_every_practice_column():
    report = import_practitioners_from_text(EXAMPLE.read_text(), geocode=False)
    assert report.errors == [] and report.written
    lopez = Practitioner.objects.get(external_id="ex-001")
    assert (lopez.new_patients, lopez.gender) == ("accepting", "female")
    assert sorted(lopez.languages.values_list("code", flat=True)) == ["en", "es"]
    assert sorted(lopez.payers.values_list("slug", flat=True)) == [
        "aetna",
        "blue-cross-blue-shield",
        "medicare",
    ]
    assert (lopez.self_pay_min, lopez.self_pay_max, lopez.hsa_fsa) == (80, 120, True)
    assert lopez.payment_checked_on == dt.date(2026, 5, 12)
    poplar, germantown = lopez.locations.order_by("postal_code")
    assert poplar.opening_hours.count() == 11  # two a weekday, one on Saturday
    assert poplar.wheelchair_entrance and poplar.parking and not poplar.public_transit
    assert germantown.reopens_on == dt.date(2026, 6, 3)
    assert [(h.weekday, h.opens) for h in germantown.opening_hours.all()] == [
        (1, T(12)),
        (3, T(12)),
    ]
    okafor = Practitioner.objects.get(external_id="ex-002")
    assert okafor.new_patients == NewPatients.EXISTING_AND_FAMILY and not okafor.payers.exists()
    late = okafor.locations.get().opening_hours.order_by("weekday")
    assert [(h.weekday, h.end_minute) for h in late] == [
        (3, 4 * 1440 + 30),
        (4, 5 * 1440 + 30),
        (5, 6 * 1440 + 30),
    ]


def test_bad_practice_cells_are_reported_with_their_line_and_nothing_is_written():
    rows = EXAMPLE.read_text().splitlines()
    header, first = rows[0], rows[1]
    bad = (
        first.replace("en;es", "en;xx")
        .replace(",accepting,", ",maybe,")
        .replace("Sa 09:00-13:00", "Sat 9-1")
    )
    report = import_practitioners_from_text("\n".join([header, bad]), geocode=False)
    assert not report.written
    (error,) = report.errors
    assert error.line == 2
    assert "languages: unknown ISO 639 code 'xx'" in error.message
    assert "new_patients must be one of accepting, not_accepting" in error.message
    assert "hours: 'Sat' is not a day like Mo" in error.message


def test_a_file_without_the_practice_columns_leaves_them_as_they_are():
    import_practitioners_from_text(EXAMPLE.read_text(), geocode=False)
    rows = EXAMPLE.read_text().splitlines()
    columns = rows[0].split(",")
    keep = columns.index("status") + 1  # everything before the practice columns
    lines = [",".join(columns[:keep])]
    reader = csv.reader(io.StringIO("\n".join(rows[1:])))
    out = io.StringIO()
    csv.writer(out).writerows(row[:keep] for row in reader)
    report = import_practitioners_from_text("\n".join(lines) + "\n" + out.getvalue(), geocode=False)
    assert report.errors == []
    lopez = Practitioner.objects.get(external_id="ex-001")
    assert lopez.languages.count() == 2 and lopez.hsa_fsa
    assert OpeningHours.objects.filter(location__practitioner=lopez).count() == 13


def test_the_old_yes_no_column_still_imports_onto_the_four_values():
    header = (
        "external_id,name,profession,address_line1,city,state,postal_code,accepting_new_patients"
    )
    text = f"{header}\nyn-1,Yes,chiropractor,1 Main St,Memphis,TN,38117,no\n"
    assert import_practitioners_from_text(text, geocode=False).errors == []
    assert Practitioner.objects.get(external_id="yn-1").new_patients == NewPatients.NOT_ACCEPTING


def test_an_export_writes_the_practice_columns_and_imports_back_the_same():
    import_practitioners_from_text(EXAMPLE.read_text(), geocode=False)
    dataset = PractitionerResource().export()
    exported = dataset.csv
    rows = list(csv.DictReader(io.StringIO(exported)))
    lopez = [row for row in rows if row["external_id"] == "ex-001"]
    assert lopez[0]["hours"] == "Mo-Fr 08:00-12:00,13:00-18:00; Sa 09:00-13:00"
    assert lopez[0]["insurance"] == "aetna;blue-cross-blue-shield;medicare"
    assert lopez[0]["gender"] == "female" and lopez[0]["new_patients"] == "accepting"
    before = OpeningHours.objects.count()
    Practitioner.objects.get(external_id="ex-002").languages.clear()
    report = import_practitioners_from_text(exported, geocode=False)
    assert report.errors == []
    assert OpeningHours.objects.count() == before
    okafor = Practitioner.objects.get(external_id="ex-002")
    assert sorted(okafor.languages.values_list("code", flat=True)) == ["ase", "en"]


# --- The NPI registry's gender ------------------------------------------------------------------


def test_import_nppes_records_the_registrys_gender_for_the_filter_only(client):
    from practitioners.ingest.nppes import import_nppes

    fixtures = Path(__file__).parent / "fixtures" / "nppes"
    with open(fixtures / "npidata_pfile_month1.csv", "rb") as stream:
        import_nppes(stream=stream, status=Practitioner.Status.PUBLISHED)
    imported = Practitioner.objects.filter(source=Practitioner.Source.NPPES)
    assert imported.exists()
    assert set(imported.values_list("gender", flat=True)) == {"female"}  # the fixture's "F"
    listing = imported.first()
    assert listing.nppes_values["gender"] == "female"
    assert "female" not in client.get(listing.get_absolute_url()).content.decode().lower()


def test_a_files_yes_no_no_keeps_a_listings_existing_patients_only():
    import_practitioners_from_text(EXAMPLE.read_text(), geocode=False)
    header = "external_id,name,credentials,profession,address_line1,city,state,postal_code"
    okafor = Practitioner.objects.get(external_id="ex-002")
    row = 'ex-002,Sam Okafor,"PT, DPT",physical-therapist,1500 Union Ave,Memphis,TN,38104'
    report = import_practitioners_from_text(
        f"{header},accepting_new_patients\n{row},no\n", geocode=False
    )
    assert report.errors == []  # (the row changes other columns: that is not the point)
    okafor.refresh_from_db()
    assert okafor.new_patients == NewPatients.EXISTING_AND_FAMILY
    import_practitioners_from_text(f"{header},accepting_new_patients\n{row},yes\n", geocode=False)
    okafor.refresh_from_db()
    assert okafor.new_patients == NewPatients.ACCEPTING
