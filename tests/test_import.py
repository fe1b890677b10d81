"""CSV import: upsert by external_id, several clinics per practitioner, bad rows reported."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from practitioners.ingest.csv import COLUMNS, import_practitioners
from practitioners.models import Location, Practitioner, PractitionerCertification

pytestmark = pytest.mark.django_db


def row(**overrides) -> dict[str, str]:
    base = {
        "external_id": "ext-1",
        "name": "Jane Roe",
        "credentials": "DC",
        "profession": "chiropractor",
        "certifications": "art;graston-m1",
        "location_name": "Poplar Clinic",
        "address_line1": "5100 Poplar Ave",
        "address_line2": "",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38117",
        "latitude": "35.1",
        "longitude": "-89.9",
        "phone": "(901) 555-0100",
        "website": "https://example.com",
        "email": "jane@example.com",
        "accepting_new_patients": "true",
        "telehealth": "false",
        "bio": "Sports injuries.",
        "status": "published",
    }
    base.update(overrides)
    return base


def csv_text(*rows: dict[str, str], columns: list[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run(text: str, **options):
    return import_practitioners(stream=io.StringIO(text), **options)


SAMPLE = csv_text(
    row(),
    row(
        address_line1="77 Second St",
        postal_code="38104",
        latitude="",
        longitude="",
        location_name="Midtown",
    ),
    row(
        external_id="ext-2",
        name="John Doe",
        profession="physical-therapist",
        certifications="dry-needling",
        city="Cambridge",
        state="MA",
        postal_code="02139",
        latitude="",
        longitude="",
        address_line1="1 Main St",
    ),
)


def test_rows_sharing_an_external_id_become_one_practitioner_with_several_clinics():
    report = run(SAMPLE)

    assert report.errors == []
    assert (report.practitioners_created, report.locations_created) == (2, 3)
    jane = Practitioner.objects.get(external_id="ext-1")
    assert jane.locations.count() == 2
    assert sorted(jane.certifications.values_list("slug", flat=True)) == ["art", "graston-m1"]
    assert jane.status == "published" and jane.profession.slug == "chiropractor"


def test_given_coordinates_are_kept_and_missing_ones_fall_back_to_the_zip_centroid():
    run(SAMPLE)
    provided = Location.objects.get(address_line1="5100 Poplar Ave")
    assert (provided.latitude, provided.longitude, provided.precision) == (35.1, -89.9, "provided")
    centroid = Location.objects.get(address_line1="77 Second St")
    assert centroid.precision == "zip"
    assert centroid.latitude == pytest.approx(35.12, abs=0.1)


def test_zip_codes_keep_their_leading_zero():
    run(SAMPLE)
    assert Location.objects.get(address_line1="1 Main St").postal_code == "02139"


def test_reimporting_the_same_file_changes_nothing():
    run(SAMPLE)
    before = {p.pk: p.updated_at for p in Practitioner.objects.all()}
    counts = (
        Practitioner.objects.count(),
        Location.objects.count(),
        PractitionerCertification.objects.count(),
    )

    report = run(SAMPLE)

    assert report.practitioners_unchanged == 2
    assert (
        report.practitioners_created,
        report.practitioners_updated,
        report.locations_created,
    ) == (0, 0, 0)
    assert {p.pk: p.updated_at for p in Practitioner.objects.all()} == before
    assert (
        Practitioner.objects.count(),
        Location.objects.count(),
        PractitionerCertification.objects.count(),
    ) == counts


def test_a_changed_row_updates_the_practitioner_in_place():
    run(SAMPLE)
    report = run(csv_text(row(name="Jane Roe-Smith", certifications="art;graston-m1;faktr")))
    assert report.practitioners_updated == 1 and report.certifications_added == 1
    jane = Practitioner.objects.get(external_id="ext-1")
    assert jane.name == "Jane Roe-Smith"
    assert "faktr" in jane.certifications.values_list("slug", flat=True)


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written():
    text = csv_text(
        row(),
        row(external_id="b1", profession="wizard"),
        row(external_id="b2", certifications="art;reiki"),
        row(external_id="b3", postal_code="3811"),
        row(external_id="b4", name=""),
        row(external_id="b5", latitude="95", longitude="0"),
        row(external_id="b6", website="javascript:alert(1)"),
        row(external_id="b7", telehealth="maybe"),
        row(external_id="b8", status="live"),
        row(external_id="b9", latitude="35.1", longitude=""),
    )

    report = run(text)

    messages = {error.line: error.message for error in report.errors}
    assert messages[3] == "unknown profession 'wizard'"
    assert messages[4] == "unknown certification 'reiki'"
    assert "postal_code must be 5 digits" in messages[5]
    assert "name is required" in messages[6]
    assert "latitude must be between -90 and 90" in messages[7]
    assert "website must be an http:// or https:// address" in messages[8]
    assert "telehealth must be true or false" in messages[9]
    assert "status must be one of" in messages[10]
    assert "both latitude and longitude" in messages[11]
    assert len(report.errors) == 9
    assert not report.written
    assert Practitioner.objects.count() == 0


def test_skip_bad_rows_writes_the_good_ones():
    report = run(csv_text(row(), row(external_id="b1", profession="wizard")), skip_bad_rows=True)
    assert report.written and len(report.errors) == 1
    assert list(Practitioner.objects.values_list("external_id", flat=True)) == ["ext-1"]


def test_conflicting_rows_for_one_external_id_are_an_error():
    report = run(csv_text(row(), row(name="Someone Else", address_line1="2 Other St")))
    assert report.errors[0].line == 3
    assert "first seen on line 2 with a different name" in report.errors[0].message


def test_unknown_slugs_are_never_created():
    from practitioners.models import Certification, Profession

    before = (Certification.objects.count(), Profession.objects.count())
    run(csv_text(row(profession="herbalist", certifications="reiki")), skip_bad_rows=True)
    assert (Certification.objects.count(), Profession.objects.count()) == before


def test_missing_required_columns_are_named():
    report = run("external_id,name\nx,y\n")
    assert (
        "missing column(s): profession, address_line1, city, state, postal_code"
        in report.errors[0].message
    )


def test_dry_run_reports_counts_and_writes_nothing():
    report = run(SAMPLE, dry_run=True)
    assert report.practitioners_created == 2 and not report.written
    assert Practitioner.objects.count() == 0


def test_npi_column_is_optional_and_check_digit_validated():
    good = row(npi="1234567893")
    bad = row(external_id="ext-2", npi="1234567890", address_line1="3 X St")
    report = run(csv_text(good, bad, columns=[*COLUMNS, "npi"]))
    assert [e.line for e in report.errors] == [3]
    assert "not a valid NPI" in report.errors[0].message


def test_import_command_prints_a_summary(tmp_path):
    path = tmp_path / "practitioners.csv"
    path.write_text(SAMPLE)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_practitioners", str(path), stdout=out, stderr=err)
    assert "2 created" in out.getvalue()
    assert Practitioner.objects.count() == 2


def test_import_command_fails_on_bad_rows_and_lists_them(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(row(), row(external_id="b1", state="Tennessee")))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 bad row"):
        call_command(
            "import_practitioners", str(path), stdout=io.StringIO(), stderr=err, verbosity=0
        )
    assert "line 3: state must be a two-letter code" in err.getvalue()
    assert Practitioner.objects.count() == 0


def test_import_command_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "practitioners.csv"
    path.write_text(SAMPLE)
    out = io.StringIO()
    call_command("import_practitioners", str(path), "--dry-run", stdout=out, stderr=io.StringIO())
    assert "would be written" in out.getvalue()
    assert Practitioner.objects.count() == 0


def test_import_command_reports_a_missing_file_clearly():
    with pytest.raises(CommandError, match="Cannot open"):
        call_command("import_practitioners", "/nonexistent/file.csv")


def test_seed_demo_is_idempotent_and_answers_the_memphis_question(client):
    call_command("seed_demo", stdout=io.StringIO())
    counts = (
        Practitioner.objects.count(),
        Location.objects.count(),
        PractitionerCertification.objects.count(),
    )
    call_command("seed_demo", stdout=io.StringIO())
    assert (
        Practitioner.objects.count(),
        Location.objects.count(),
        PractitionerCertification.objects.count(),
    ) == counts
    assert counts[0] >= 200

    body = client.get(
        "/api/practitioners/?zip=38117&radius=25&certification=art&certification=graston"
    ).json()
    assert body["count"] >= 5


def test_import_command_no_geocode_leaves_new_clinics_pending_at_their_zip(tmp_path, settings):
    # A real provider on a port where nothing listens: any request would mark the clinic failed.
    settings.GEOCODER = "nominatim"
    settings.GEOCODER_DOMAIN = "127.0.0.1:9"
    settings.GEOCODER_SCHEME = "http"
    path = tmp_path / "practitioners.csv"
    path.write_text(csv_text(row(latitude="", longitude="")))

    call_command(
        "import_practitioners",
        str(path),
        "--no-geocode",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    location = Location.objects.get()
    assert location.geocode_status == "pending"
    assert location.precision == "zip"
    assert location.latitude == pytest.approx(35.11, abs=0.05)


def test_new_row_builds_what_the_model_constructor_builds():
    from practitioners.ingest.bulk import new_row

    values = {"practitioner_id": 7, "address_line1": "1 Main St", "city": "Memphis"}
    fast, slow = new_row(Location, **values), Location(**values)

    for field in Location._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(slow, field.attname), field.name
    assert fast._state.adding and fast.pk is None
    assert new_row(Practitioner).nppes_values is not new_row(Practitioner).nppes_values
    with pytest.raises(TypeError, match="practitioner"):
        new_row(Location, practitioner=object())


# --- streaming (issue 12): a batch at a time, one transaction -----------------------------------

SPREAD = csv_text(
    row(),
    row(external_id="ext-2", name="John Doe", address_line1="1 Main St", postal_code="38104"),
    row(external_id="ext-3", name="Ann Lee", address_line1="2 Oak St", postal_code="38104"),
    row(address_line1="77 Second St", postal_code="38104", latitude="", longitude="", phone="2"),
)


def test_rows_of_one_listing_far_apart_become_one_practitioner_whatever_the_batch_size():
    report = run(SPREAD, batch_size=1)

    assert report.errors == []
    assert (report.practitioners_created, report.locations_created) == (3, 4)
    jane = Practitioner.objects.get(external_id="ext-1")
    assert sorted(jane.locations.values_list("address_line1", flat=True)) == [
        "5100 Poplar Ave",
        "77 Second St",
    ]
    assert jane.locations.get(address_line1="77 Second St").has_other_clinics


def test_a_conflicting_row_in_a_later_batch_names_the_first_line_and_nothing_is_written():
    text = csv_text(
        row(),
        row(external_id="ext-2", name="John Doe", address_line1="1 Main St"),
        row(name="Someone Else", address_line1="2 Other St"),
    )

    report = run(text, batch_size=1)

    assert [(e.line, e.message) for e in report.errors] == [
        (4, "external_id 'ext-1' was first seen on line 2 with a different name")
    ]
    assert not report.written and report.practitioners_created == 0
    assert Practitioner.objects.count() == 0


def test_a_listing_that_existed_before_the_file_is_updated_once_when_its_rows_are_far_apart():
    run(csv_text(row()))
    text = csv_text(
        row(name="Jane Smith-Jones"),
        row(external_id="ext-2", name="John Doe", address_line1="1 Main St"),
        row(name="Jane Smith-Jones", address_line1="77 Second St", phone="2"),
        row(name="Jane Smith", address_line1="9 Third St"),
    )

    report = run(text, batch_size=1, skip_bad_rows=True)

    assert [(e.line, e.message) for e in report.errors] == [
        (5, "external_id 'ext-1' was first seen on line 2 with a different name")
    ]
    assert (report.practitioners_updated, report.practitioners_created) == (1, 1)
    jane = Practitioner.objects.get(external_id="ext-1")
    assert jane.name == "Jane Smith-Jones"
    assert sorted(jane.locations.values_list("address_line1", flat=True)) == [
        "5100 Poplar Ave",
        "77 Second St",
    ]


def test_a_bad_row_in_the_last_batch_means_nothing_from_earlier_batches_is_written():
    text = csv_text(row(), row(external_id="ext-2"), row(external_id="ext-3", state="Tennessee"))

    report = run(text, batch_size=1)

    assert [e.line for e in report.errors] == [4]
    assert not report.written
    assert (Practitioner.objects.count(), Location.objects.count()) == (0, 0)


def test_skip_bad_rows_keeps_the_good_rows_of_every_batch():
    text = csv_text(row(), row(external_id="ext-2", state="Tennessee"), row(external_id="ext-3"))
    report = run(text, batch_size=1, skip_bad_rows=True)
    assert report.written and report.error_count == 1
    assert sorted(Practitioner.objects.values_list("external_id", flat=True)) == ["ext-1", "ext-3"]


def test_the_progress_callback_hears_rows_read_and_errors_so_far(tmp_path):
    path = tmp_path / "three.csv"
    path.write_text(
        csv_text(row(), row(external_id="b1", profession="wizard"), row(external_id="x"))
    )
    heard = []

    run_report = import_practitioners(path=path, batch_size=1, progress=heard.append)

    assert not run_report.written
    assert [(p.rows_read, p.errors) for p in heard][-1] == (3, 1)
    assert heard[-1].bytes_read == heard[-1].bytes_total == path.stat().st_size
    assert [p.rows_read for p in heard] == sorted(p.rows_read for p in heard)


def test_a_text_longer_than_the_model_field_is_a_bad_row_with_the_models_limit():
    limit = Practitioner._meta.get_field("credentials").max_length
    report = run(csv_text(row(credentials="D" * (limit + 1))))
    assert report.errors[0].message == f"credentials is longer than {limit} characters"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"external_id,name\n\xff\xfe,x\n", "not UTF-8 text"),
        ("x".join(COLUMNS).encode() + b"\n", "missing column"),
    ],
)
def test_an_unreadable_file_is_a_clear_message_and_writes_nothing(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_practitioners", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert Practitioner.objects.count() == 0


def test_a_nul_byte_is_reported_with_its_line_and_nothing_is_written(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text(csv_text(row(), row(external_id="ext-2", bio="a\x00b")))
    report = import_practitioners(path=path)
    assert (
        report.file_error == "line 3: the file contains a NUL byte (is it a spreadsheet, not "
        "CSV?); nothing was written"
    )
    assert not report.written and Practitioner.objects.count() == 0


def test_the_command_draws_its_progress_on_the_stderr_it_was_given(tmp_path):
    path = tmp_path / "practitioners.csv"
    path.write_text(SAMPLE)
    err = io.StringIO()
    call_command("import_practitioners", str(path), stdout=io.StringIO(), stderr=err, verbosity=1)
    assert "Importing" in err.getvalue() and "3 rows" in err.getvalue()


# --- one rule each (issue 12) --------------------------------------------------------------------


def test_one_slug_rule_whether_a_listing_comes_from_a_file_the_registry_or_the_public_form():
    from practitioners.curation.services import ClinicSubmission, ListingSubmission, submit_listing
    from practitioners.models import Profession, unique_listing_slugs

    run(csv_text(row(), row(external_id="ext-2", address_line1="9 Elm St")))
    slugs = sorted(Practitioner.objects.values_list("slug", flat=True))
    assert slugs == ["jane-roe-memphis", "jane-roe-memphis-2"]

    clinic = ClinicSubmission(
        name="",
        address_line1="1 Oak St",
        address_line2="",
        city="Memphis",
        state="TN",
        postal_code="38117",
        phone="",
    )
    submitted = submit_listing(
        submission=ListingSubmission(
            name="Jane Roe",
            profession=Profession.objects.get(slug="chiropractor"),
            clinics=[clinic],
        )
    )
    assert submitted.slug == "jane-roe-memphis-3"
    # A listing with an NPI takes the NPI before a number: the registry's monthly re-run
    # then gives the same person the same address.
    assert unique_listing_slugs([("Jane Roe", "Memphis", "1234567893")]) == [
        "jane-roe-memphis-1234567893"
    ]
    assert unique_listing_slugs([("Jane Roe", "Memphis", ""), ("Jane Roe", "Memphis", "")]) == [
        "jane-roe-memphis-4",
        "jane-roe-memphis-5",
    ]


def test_the_same_clinic_written_differently_is_matched_not_added():
    run(SAMPLE)
    report = run(csv_text(row(address_line1="5100 POPLAR AVE.", location_name="Renamed")))
    assert (report.locations_created, report.locations_updated) == (0, 1)
    assert Location.objects.get(address_line1="5100 Poplar Ave").name == "Renamed"


def test_ingest_never_imports_the_pages_the_api_or_the_admin():
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "practitioners" / "ingest"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        upward = {
            name for name in imported if name.split(".")[-1] in {"views", "api", "admin", "forms"}
        }
        assert not upward, f"{module.name} imports {upward}"
        assert len(module.read_text().splitlines()) <= 600, module.name
