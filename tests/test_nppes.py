"""NPI registry (NPPES) import: who gets in, what a monthly re-run changes, what it never
touches."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from practitioners.ingest.nppes import NppesFormatError, import_nppes, import_nppes_from_text
from practitioners.ingest.nppes_reader import (
    LOCATIONS_OPTIONAL,
    LOCATIONS_REQUIRED,
    MAIN_REQUIRED,
    Skip,
    display_name,
    find_columns,
    normalise_header,
    title_case_address,
    title_case_name,
)
from practitioners.models import Location, Practitioner, PractitionerCertification
from practitioners.search import geo
from tests.factories import LocationFactory, PractitionerFactory, certification
from tests.fixtures.nppes import make_fixtures as fx

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "nppes"
MONTH1 = FIXTURES / "npidata_pfile_month1.csv"
MONTH2 = FIXTURES / "npidata_pfile_month2.csv"
PL1 = FIXTURES / "pl_pfile_month1.csv"
PL2 = FIXTURES / "pl_pfile_month2.csv"


def run(path: Path, locations: Path | None = None, **options):
    with path.open("rb") as stream:
        pl = locations.open("rb") if locations else None
        try:
            return import_nppes(stream=stream, locations_stream=pl, **options)
        finally:
            if pl:
                pl.close()


def listing(npi: str) -> Practitioner:
    return Practitioner.objects.select_related("profession").get(npi=npi)


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows([header, *rows])
    return buffer.getvalue()


def snapshot() -> list[tuple]:
    practitioners = Practitioner.objects.order_by("npi").values_list(
        "npi", "name", "credentials", "phone", "status", "nppes_values", "updated_at"
    )
    locations = Location.objects.order_by("pk").values_list(
        "pk", "address_line1", "postal_code", "phone", "latitude", "updated_at"
    )
    return [*practitioners, *locations]


# --- who gets in -----------------------------------------------------------------------------


def test_each_profession_comes_from_its_taxonomy_code():
    run(MONTH1)

    assert listing(fx.CHIRO).profession.slug == "chiropractor"
    assert listing(fx.PT).profession.slug == "physical-therapist"
    assert listing(fx.MASSAGE).profession.slug == "massage-therapist"
    assert listing(fx.TRAINER).profession.slug == "athletic-trainer"
    assert listing(fx.ACUPUNCTURIST).profession.slug == "acupuncturist"
    assert listing(fx.OT).profession.slug == "occupational-therapist"  # 225XH1200X, a specialty
    assert listing(fx.DO).profession.slug == "osteopathic-physician"


def test_a_mapped_code_in_slot_nine_alone_is_enough():
    run(MONTH1)

    assert listing(fx.SLOT_NINE).profession.slug == "chiropractor"


def test_a_primary_switch_on_an_unmapped_code_falls_back_to_the_first_mapped_slot():
    run(MONTH1)

    assert listing(fx.PRIMARY_UNMAPPED).profession.slug == "physical-therapist"


def test_a_primary_switch_on_a_mapped_code_beats_an_earlier_slot():
    run(MONTH1)

    assert listing(fx.PRIMARY_MAPPED).profession.slug == "chiropractor"


def test_organisations_foreign_addresses_bad_npis_and_bad_zips_are_skipped_and_counted():
    report = run(MONTH1)

    for npi in (fx.ORGANISATION, fx.FOREIGN, fx.BAD_CHECK_DIGIT, fx.FAMILY_DOCTOR, fx.BAD_ZIP):
        assert not Practitioner.objects.filter(npi=npi).exists()
    assert report.skipped[Skip.NOT_INDIVIDUAL] == 1
    assert report.skipped[Skip.OUTSIDE_US] == 1
    assert report.skipped[Skip.BAD_NPI] == 1
    assert report.skipped[Skip.BAD_ZIP] == 1
    assert report.skipped[Skip.NO_TAXONOMY] == 1  # the family doctor
    assert report.skipped[Skip.DEACTIVATED] == 2  # one blank row as in the real file, one full
    assert report.scanned == 18
    assert report.created == 11 == Practitioner.objects.count()
    assert report.matched["Chiropractor"] == 3
    assert report.matched["Physical therapist"] == 3
    assert report.matched_total == 11


def test_a_deactivated_npi_is_not_created_and_a_reactivated_one_is():
    run(MONTH1)

    assert not Practitioner.objects.filter(npi=fx.DEACTIVATED_FULL).exists()
    assert not Practitioner.objects.filter(npi=fx.DEACTIVATED_BLANK).exists()
    assert listing(fx.REACTIVATED).is_public


def test_names_are_title_cased_zips_keep_leading_zeros_and_phones_are_formatted():
    run(MONTH1)

    jane = listing(fx.CHIRO)
    assert jane.name == "Jane Marie O'Neil"
    assert jane.credentials == "D.C."
    assert jane.phone == "(901) 555-0101"
    assert listing(fx.PT).name == "Robert McDonald Jr."
    assert listing(fx.TRAINER).name == "Alex Smith-Jones"
    assert listing(fx.DO).name == "Pat Mack"  # MACK is not "MacK"
    boston = listing(fx.MASSAGE).locations.get()
    assert boston.postal_code == "02116"  # from 9 digits, leading zero kept
    assert boston.city == "Boston"
    assert jane.locations.get().postal_code == "38117"
    assert listing(fx.PT).locations.get().postal_code == "38104"  # 5 digits as they came


def test_new_listings_are_published_from_the_registry_at_their_zip_centroid_pending_geocoding():
    run(MONTH1)

    jane = listing(fx.CHIRO)
    assert jane.status == Practitioner.Status.PUBLISHED
    assert jane.source == Practitioner.Source.NPPES
    assert jane.source_updated_on == dt.date(2026, 1, 10)
    assert jane.nppes_values["phone"] == "(901) 555-0101"
    clinic = jane.locations.get()
    centroid = geo.zip_centroid("38117")
    assert (clinic.latitude, clinic.longitude) == (centroid.latitude, centroid.longitude)
    assert clinic.precision == Location.Precision.ZIP
    assert clinic.geocode_status == Location.GeocodeStatus.PENDING
    assert clinic.source == Location.Source.NPPES
    assert (clinic.address_line1, clinic.address_line2) == ("5100 Poplar Ave", "Ste 200")


def test_the_profile_says_the_listing_comes_from_the_npi_registry_without_certification(client):
    run(MONTH1)

    page = client.get(listing(fx.CHIRO).get_absolute_url()).content.decode()

    assert "From the NPI registry, updated January 2026" in page
    assert fx.CHIRO in page
    assert "No technique certification has been confirmed" in page


def test_imported_listings_are_found_near_their_zip_right_away_with_their_npi(client):
    run(MONTH1)

    results = client.get("/api/practitioners/", {"zip": "38117", "radius": 5}).json()["results"]

    jane = next(r for r in results if r["npi"] == fx.CHIRO)
    assert jane["name"] == "Jane Marie O'Neil"
    assert jane["location"]["precision"] == "zip"


def test_slugs_stay_unique_when_two_practitioners_share_a_name_and_city():
    PractitionerFactory(slug="jane-marie-oneil-memphis", name="Jane Marie O'Neil")

    run(MONTH1)

    assert listing(fx.CHIRO).slug == f"jane-marie-oneil-memphis-{fx.CHIRO}"
    assert listing(fx.PT).slug == "robert-mcdonald-jr-memphis"


def test_the_status_option_sets_the_status_of_new_listings_only():
    call_command("import_nppes", str(MONTH1), "--status", "draft", verbosity=0)

    assert not Practitioner.objects.exclude(status=Practitioner.Status.DRAFT).exists()


def test_the_states_option_keeps_only_practices_in_those_states():
    report = run(MONTH1, states=["ms", "AR"])

    assert set(Practitioner.objects.values_list("npi", flat=True)) == {fx.ACUPUNCTURIST, fx.OT}
    assert report.skipped[Skip.OUTSIDE_STATES] == 10


def test_secondary_locations_are_added_without_repeating_the_practice_address():
    run(MONTH1, locations=PL1)

    jane = listing(fx.CHIRO)
    cities = sorted(jane.locations.values_list("city", flat=True))
    assert cities == ["Germantown", "Memphis", "Southaven"]
    germantown = jane.locations.get(city="Germantown")
    assert germantown.postal_code == "38138"
    assert germantown.phone == "(901) 555-0201"
    assert germantown.nppes_key.startswith("pl:")
    assert germantown.geocode_status == Location.GeocodeStatus.PENDING
    assert listing(fx.PT).locations.count() == 2
    assert not Location.objects.filter(city="Berlin").exists()
    assert not Location.objects.filter(address_line1="1 Org Way").exists()


def test_secondary_locations_are_found_whatever_the_order_of_the_main_file():
    header, *rows = MONTH1.read_text().splitlines(keepends=True)

    import_nppes_from_text("".join([header, *reversed(rows)]), PL1.read_text())

    assert listing(fx.CHIRO).locations.count() == 3
    assert listing(fx.PT).locations.count() == 2


# --- monthly re-runs ------------------------------------------------------------------------


def test_rerunning_the_same_files_changes_nothing():
    run(MONTH1, locations=PL1)
    before = snapshot()

    report = run(MONTH1, locations=PL1)

    assert snapshot() == before
    assert (report.created, report.updated, report.suspended) == (0, 0, 0)
    assert report.unchanged == 11
    assert report.locations_created == 0


def test_next_month_updates_phone_and_name_but_keeps_what_staff_curate():
    run(MONTH1, locations=PL1)
    jane = listing(fx.CHIRO)
    jane.credentials = "DC, CCSP"  # staff corrected it by hand
    jane.bio = "Sports injuries."
    jane.website = "https://oneil.example.com"
    jane.save()
    PractitionerCertification.objects.create(practitioner=jane, certification=certification("art"))
    staff_clinic = LocationFactory(practitioner=jane, address_line1="1 Staff St", name="Annex")
    robert = listing(fx.PT)
    robert.status = Practitioner.Status.DRAFT  # a status decision
    robert.save()

    report = run(MONTH2, locations=PL2)

    jane.refresh_from_db()
    assert jane.phone == "(901) 555-0199"  # NPPES owns it and nobody touched it
    assert jane.credentials == "DC, CCSP"  # the file says "DC": staff's correction wins
    assert jane.nppes_values["credentials"] == "D.C."  # what NPPES last wrote, for the admin
    assert (jane.bio, jane.website) == ("Sports injuries.", "https://oneil.example.com")
    assert jane.source_updated_on == dt.date(2026, 2, 3)
    assert jane.certifications.filter(slug="art").exists()
    assert Location.objects.get(pk=staff_clinic.pk).address_line1 == "1 Staff St"
    assert jane.locations.get(nppes_key="practice").phone == "(901) 555-0199"
    robert.refresh_from_db()
    assert robert.name == "Robert McDonald-Hall Jr."
    assert robert.status == Practitioner.Status.DRAFT
    assert report.updated == 3  # phone, name, moved address
    assert report.staff_values_kept == 1
    assert jane.history.first().history_change_reason.startswith("NPI registry import")


def test_an_older_record_never_rolls_a_listing_back():
    run(MONTH1)

    report = run(MONTH2)

    assert listing(fx.MASSAGE).phone == "(617) 555-0103"
    assert report.skipped[Skip.OLDER] == 1


def test_a_deactivated_npi_suspends_its_listing_once_with_the_reason():
    run(MONTH1)

    report = run(MONTH2)

    chen = listing(fx.ACUPUNCTURIST)
    assert chen.status == Practitioner.Status.SUSPENDED
    assert chen.status_reason == "NPI deactivated 02/01/2026"
    assert report.suspended == 1
    # Staff looked into it and reinstated the listing: the same file does not suspend it again.
    chen.status = Practitioner.Status.PUBLISHED
    chen.save()
    assert run(MONTH2).suspended == 0
    assert listing(fx.ACUPUNCTURIST).status == Practitioner.Status.PUBLISHED


def test_a_moved_practice_goes_back_to_its_zip_centroid_pending_geocoding():
    run(MONTH1)
    clinic = listing(fx.TRAINER).locations.get()
    clinic.latitude, clinic.longitude = 36.16, -86.78
    clinic.precision, clinic.geocode_status = Location.Precision.ADDRESS, "ok"
    clinic.save()

    run(MONTH2)

    clinic.refresh_from_db()
    centroid = geo.zip_centroid("37213")
    assert (clinic.address_line1, clinic.postal_code) == ("1 Titans Way", "37213")
    assert (clinic.latitude, clinic.longitude) == (centroid.latitude, centroid.longitude)
    assert clinic.geocode_status == Location.GeocodeStatus.PENDING
    assert listing(fx.TRAINER).locations.count() == 1


def test_a_pin_set_by_hand_stays_when_the_practice_moves():
    run(MONTH1)
    clinic = listing(fx.TRAINER).locations.get()
    clinic.latitude, clinic.longitude, clinic.precision = 36.15, -86.77, Location.Precision.MANUAL
    clinic.save()

    run(MONTH2)

    clinic.refresh_from_db()
    assert (clinic.latitude, clinic.longitude, clinic.precision) == (36.15, -86.77, "manual")


def test_a_closed_secondary_location_is_removed_and_a_deleted_one_is_not_added_back():
    run(MONTH1, locations=PL1)
    jane = listing(fx.CHIRO)
    jane.locations.get(city="Germantown").delete()  # staff know better

    report = run(MONTH2, locations=PL2)

    assert sorted(jane.locations.values_list("city", flat=True)) == ["Memphis"]
    assert report.locations_removed == 1


def test_an_existing_listing_with_the_same_npi_is_matched_not_duplicated():
    staff = PractitionerFactory(npi=fx.CHIRO, name="Dr Jane O'Neil", phone="", credentials="")
    LocationFactory(practitioner=staff, address_line1="5100 Poplar Ave", postal_code="38117")

    run(MONTH1)

    staff.refresh_from_db()
    assert Practitioner.objects.filter(npi=fx.CHIRO).count() == 1
    assert staff.name == "Dr Jane O'Neil"  # typed by staff, not ours to replace
    assert (staff.phone, staff.credentials) == ("(901) 555-0101", "D.C.")  # blanks filled
    assert staff.source == Practitioner.Source.STAFF
    assert staff.locations.count() == 1


# --- the file itself ------------------------------------------------------------------------


def test_a_missing_required_column_stops_before_writing_and_names_it():
    missing = FIXTURES / "npidata_pfile_missing_zip.csv"

    with pytest.raises(CommandError, match="Provider Business Practice Location Address Postal"):
        call_command("import_nppes", str(missing), verbosity=0)

    assert not Practitioner.objects.exists()


def test_a_missing_column_in_the_location_file_is_named_too():
    text = MONTH1.read_text()
    line1 = "Provider Secondary Practice Location Address- Address Line 1"
    locations = csv_text(["NPI", line1], [])

    with pytest.raises(NppesFormatError, match="City Name"):
        import_nppes_from_text(text, locations)

    assert not Practitioner.objects.exists()


def test_a_file_cut_down_to_the_required_columns_still_imports():
    rows = list(csv.reader(io.StringIO(MONTH1.read_text())))
    wanted = [normalise_header(name) for name in MAIN_REQUIRED.values()]
    keep = [i for i, name in enumerate(rows[0]) if normalise_header(name) in wanted]
    cut = csv_text([rows[0][i] for i in keep], [[r[i] for i in keep] for r in rows[1:]])

    report = import_nppes_from_text(cut)

    assert listing(fx.CHIRO).name == "Jane O'Neil"
    assert report.created >= 7


def test_columns_in_another_order_and_values_without_quotes_import_the_same():
    rows = list(csv.reader(io.StringIO(MONTH1.read_text())))
    reordered = [list(reversed(r)) for r in rows]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(reordered)  # minimal quoting, NPI last

    report = import_nppes_from_text(buffer.getvalue())

    assert report.created == 11
    assert listing(fx.SLOT_NINE).profession.slug == "chiropractor"


def test_a_blank_deactivated_row_without_quotes_still_suspends_the_listing():
    run(MONTH1)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([fx.HEADER, fx.row(fx.CHIRO, entity="", deactivated="03/02/2026")])

    report = import_nppes_from_text(buffer.getvalue())

    assert report.suspended == 1
    assert listing(fx.CHIRO).status == Practitioner.Status.SUSPENDED


def test_headers_match_whatever_their_case_and_spacing_around_hyphens():
    header = [
        "npi",
        "Provider Secondary Practice Location Address -  Address Line 1",
        "PROVIDER SECONDARY PRACTICE LOCATION ADDRESS- CITY NAME",
        "Provider Secondary Practice Location Address-State Name",
        "Provider Secondary Practice Location Address - Postal Code",
        "Unknown Future Column",
    ]
    columns = find_columns(header, LOCATIONS_REQUIRED, LOCATIONS_OPTIONAL, file_label="x")

    assert columns == {"npi": 0, "address_line1": 1, "city": 2, "state": 3, "postal_code": 4}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("O'NEIL", "O'Neil"),
        ("MCDONALD", "McDonald"),
        ("SMITH-JONES", "Smith-Jones"),
        ("MACK", "Mack"),
        ("XI", "Xi"),  # a surname, not a numeral
        ("D'ANGELO", "D'Angelo"),
        ("MUÑOZ", "Muñoz"),
        ("DeMarco", "DeMarco"),  # already mixed case: kept exactly
        ("  ANNA   MARIA ", "Anna Maria"),
    ],
)
def test_names_are_title_cased_never_worse_than_the_source(source, expected):
    assert title_case_name(source) == expected


def test_suffixes_keep_their_numerals():
    assert display_name("ROBERT", "", "SMITH", "III") == "Robert Smith III"
    assert display_name("ROBERT", "LEE", "SMITH", "JR.") == "Robert Lee Smith Jr."


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("5100 POPLAR AVE", "5100 Poplar Ave"),
        ("123 NW 5TH ST", "123 NW 5th St"),
        ("PO BOX 12", "PO Box 12"),
        ("STE 3B", "Ste 3B"),
        ("1 PEÑA BLVD", "1 Peña Blvd"),
        ("1 McKinney Way", "1 McKinney Way"),
    ],
)
def test_addresses_are_title_cased_keeping_directions_and_ordinals(source, expected):
    assert title_case_address(source) == expected


def test_a_dry_run_reports_the_same_counts_and_writes_nothing():
    dry = run(MONTH1, locations=PL1, dry_run=True)

    assert not Practitioner.objects.exists()
    assert not Location.objects.exists()
    real = run(MONTH1, locations=PL1)
    assert (dry.created, dry.locations_created, dry.skipped) == (
        real.created,
        real.locations_created,
        real.skipped,
    )
    assert not dry.written and real.written


def test_the_command_prints_a_summary_with_counts_per_profession_and_skip_reason():
    out, err = io.StringIO(), io.StringIO()

    call_command("import_nppes", str(MONTH1), "--locations", str(PL1), stdout=out, stderr=err)

    summary = out.getvalue()
    assert "Scanned 18 rows; matched 11" in summary
    assert "3 Chiropractor" in summary
    assert "11 created, 0 updated, 0 unchanged, 0 suspended" in summary
    assert "1 outside the US" in summary and "1 bad NPI" in summary
    assert "rows/s" in err.getvalue()  # the progress line


def test_a_dry_run_from_the_command_says_nothing_was_written():
    out = io.StringIO()

    call_command("import_nppes", str(MONTH1), "--dry-run", stdout=out)

    assert "nothing written" in out.getvalue()
    assert not Practitioner.objects.exists()


def test_an_unreadable_file_is_a_clear_error():
    with pytest.raises(CommandError, match="Cannot open"):
        call_command("import_nppes", "/nonexistent/npidata.csv", verbosity=0)


def test_writes_are_batched_not_one_query_per_row(django_assert_max_num_queries):
    rows = [
        fx.row(
            fx.npi(f"2{n:08d}"),
            last=f"PERSON{n}",
            first="PAT",
            line1=f"{n} MAIN ST",
            city="MEMPHIS",
            state="TN",
            zip_code="38117",
            updated="01/10/2026",
            taxonomies=fx.CHIRO_CODE,
        )
        for n in range(120)
    ]
    text = csv_text(fx.HEADER, rows)

    with django_assert_max_num_queries(20):
        report = import_nppes_from_text(text)
    assert report.created == 120
    with django_assert_max_num_queries(20):
        assert import_nppes_from_text(text).unchanged == 120
