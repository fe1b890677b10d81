"""Lossless round trip (issue 15): every listing has a stable external id, an admin export
imported back creates and changes nothing, the importer undoes exactly the export's escaping,
and every change an import makes is in the listing's history."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.forms.models import model_to_dict

from practitioners.curation.history import listing_timeline
from practitioners.curation.services import ClinicSubmission, ListingSubmission, submit_listing
from practitioners.ingest.csv import (
    COLUMNS,
    IMPORTED_FORMATS,
    escape_formula,
    import_practitioners,
    unescape_formula,
)
from practitioners.ingest.nppes import import_nppes_from_text
from practitioners.models import (
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
    new_external_id,
)
from tests.fixtures.nppes import make_fixtures as fx

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/practitioners/practitioner/"
NPPES_MONTH1 = Path(__file__).parent / "fixtures" / "nppes" / "npidata_pfile_month1.csv"


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("curator", "c@x.example", "pw"))
    return client


def submission(bio: str = "") -> Practitioner:
    return submit_listing(
        submission=ListingSubmission(
            name="Sam Submitted",
            profession=Profession.objects.get(slug="chiropractor"),
            phone="(901) 555-0199",
            bio=bio,
            clinics=[
                ClinicSubmission(
                    address_line1="12 Walnut Grove Rd",
                    city="Memphis",
                    state="TN",
                    postal_code="38117",
                )
            ],
        )
    )


def snapshot() -> dict:
    """Every value of every listing, clinic and certificate, and how much history there is."""
    return {
        "listings": {p.pk: model_to_dict(p) for p in Practitioner.objects.all()},
        "clinics": {loc.pk: model_to_dict(loc) for loc in Location.objects.all()},
        "certificates": {r.pk: model_to_dict(r) for r in PractitionerCertification.objects.all()},
        "history": (
            Practitioner.history.count(),
            Location.history.count(),
            PractitionerCertification.history.count(),
        ),
    }


# --- the external id ----------------------------------------------------------------------------


def test_every_listing_has_an_external_id_from_the_moment_it_is_created():
    submitted = submission()
    staff_made = Practitioner.objects.create(name="Staff Made", slug="staff-made")
    import_nppes_from_text(NPPES_MONTH1.read_text())
    registry = Practitioner.objects.get(npi=fx.CHIRO)

    ids = [submitted.external_id, staff_made.external_id, registry.external_id]
    assert all(external_id.startswith("pl-") for external_id in ids)
    assert len(set(ids)) == 3
    assert not Practitioner.objects.filter(external_id="").exists()

    staff_made.external_id = ""  # cleared in the admin
    staff_made.save()
    staff_made.refresh_from_db()
    assert staff_made.external_id.startswith("pl-") and staff_made.external_id not in ids


def test_the_migration_gives_existing_listings_the_id_their_export_already_had():
    from importlib import import_module

    migration = import_module("practitioners.migrations.0009_listing_external_id")
    old = Practitioner.objects.create(name="Old One", slug="old-one")
    clash = Practitioner.objects.create(name="Old Two", slug="old-two")
    reimported = Practitioner.objects.create(
        name="Came back", slug="came-back", external_id=f"pk-{clash.pk}"
    )
    Practitioner.objects.filter(pk__in=[old.pk, clash.pk]).update(external_id="")

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.give_every_listing_an_external_id(django_apps, editor)

    assert Practitioner.objects.get(pk=old.pk).external_id == f"pk-{old.pk}"
    assert Practitioner.objects.get(pk=clash.pk).external_id == f"pk-{clash.pk}-2"
    assert Practitioner.objects.get(pk=reimported.pk).external_id == f"pk-{clash.pk}"


def test_new_external_ids_do_not_repeat():
    assert len({new_external_id() for _ in range(10_000)}) == 10_000


# --- the round trip -------------------------------------------------------------------------------


def test_an_admin_export_imported_back_creates_nothing_and_changes_nothing(staff_client, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    submission(bio="- certified 2019\n=not a formula, a line of text")
    Practitioner.objects.create(
        name="@Staff Listing Without Clinic",
        slug="staff-no-clinic",
        profession=Profession.objects.get(slug="physical-therapist"),
        credentials="+PT",
        phone="(901) 555-0142",
    )
    import_nppes_from_text(NPPES_MONTH1.read_text())
    before = snapshot()
    model_admin = admin.site._registry[Practitioner]
    formats = [f() for f in model_admin.get_export_formats()]
    imported = [(i, f) for i, f in enumerate(formats) if f.get_title() in IMPORTED_FORMATS]
    assert [f.get_title() for _, f in imported] == ["csv"]

    for index, export_format in imported:
        fields = {f"practitionerresource_{column}": "on" for column in [*COLUMNS, "npi"]}
        response = staff_client.post(
            f"{CHANGELIST}export/", {"format": str(index), "resource": "0", **fields}
        )
        assert response.status_code == 200
        content = response.content.decode()
        assert "pk-" not in content  # every listing exported under its own external id
        assert "'- certified 2019" in content  # escaped for spreadsheets ...
        path = tmp_path / f"export.{export_format.get_extension()}"
        path.write_text(content, encoding="utf-8")

        report = import_practitioners(path=path)

        assert report.errors == []
        assert report.written
        assert (
            report.practitioners_created,
            report.practitioners_updated,
            report.locations_created,
            report.locations_updated,
            report.certifications_added,
        ) == (0, 0, 0, 0, 0)
        assert report.practitioners_unchanged == Practitioner.objects.count()
        assert snapshot() == before  # ... and back to exactly what it was
    listing = Practitioner.objects.get(source=Practitioner.Source.SUBMISSION)
    assert listing.bio == "- certified 2019\n=not a formula, a line of text"


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil")',
        "+1 901 555 0100",
        "- certified 2019",
        "@home",
        "\tindented",
        "\rreturn",
        "'=already quoted by hand",
        "''=twice",
        "'",
        "'tis the season",
        "'-5",
        "-89.9034",
        "plain",
        "",
    ],
)
def test_the_importer_removes_exactly_the_escaping_the_exporter_added(value):
    assert unescape_formula(escape_formula(value)) == value


@pytest.mark.parametrize("typed", ["'tis the season", "'-5", "'", "'123", "it's"])
def test_an_apostrophe_the_exporter_never_adds_is_kept(typed):
    assert unescape_formula(typed) == typed


# --- history ---------------------------------------------------------------------------------


def test_every_change_an_import_makes_is_in_the_listings_history_with_the_file_name(tmp_path):
    header = ",".join(COLUMNS)

    def line(
        name: str, bio: str, street: str = "5100 Poplar Ave", certificates: str = "art"
    ) -> str:
        return (
            f"ext-1,{name},DC,chiropractor,{certificates},Poplar,{street},,Memphis,TN,38117,"
            f"35.1,-89.9,(901) 555-0100,,,true,false,{bio},published"
        )

    first = tmp_path / "first.csv"
    first.write_text("\n".join([header, line("Jane Roe", "Sports")]) + "\n")
    second = tmp_path / "changes.csv"
    second.write_text(
        "\n".join(
            [
                header,
                line("Jane Roe-Smith", "Sports and spines", certificates="art;graston"),
                line("Jane Roe-Smith", "Sports and spines", street="9 Elm St"),
            ]
        )
        + "\n"
    )

    import_practitioners(path=first)
    report = import_practitioners(path=second)

    assert (report.practitioners_updated, report.locations_created) == (1, 1)
    assert report.certifications_added == 1
    jane = Practitioner.objects.get(external_id="ext-1")
    timeline = listing_timeline(jane.pk)
    by_subject = {(entry.subject, entry.kind): entry for entry in timeline}
    assert by_subject[("Listing", "created")].author == "CSV import first.csv"
    changed = by_subject[("Listing", "changed")]
    assert changed.author == "CSV import changes.csv"
    assert {c.field for c in changed.changes} == {"name", "bio"}
    assert by_subject[("Clinic 9 Elm St, Memphis", "created")].author == "CSV import changes.csv"
    assert by_subject[("Certificate Graston Technique", "created")].author == (
        "CSV import changes.csv"
    )
