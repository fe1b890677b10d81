"""The Open Referral HSDS 3.0 API at /hsds/ and the tabular export (manage.py export_hsds).

Every response and every exported row is validated against the official HSDS 3.0 JSON schemas,
vendored from the Open Referral specification repository (practitioners/feeds/hsds_schema/).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from practitioners.curation.services import verify_certifications
from practitioners.feeds import hsds
from practitioners.models import Location, Practitioner, PractitionerCertification
from tests.factories import (
    LocationFactory,
    PractitionerFactory,
    certification,
    practitioner_near_zip,
)

pytestmark = pytest.mark.django_db

SCHEMAS = Path(hsds.__file__).resolve().parent / "hsds_schema"
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package: check it here, with a zone.
    return not isinstance(value, str) or dt.datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


def _load(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


REGISTRY = Registry().with_resources(
    (path.name, Resource.from_contents(_load(path.name), default_specification=DRAFT202012))
    for path in SCHEMAS.glob("*.json")
)
PAGE = _load("openapi.json")["components"]["schemas"]["Page"]
ITEMS = {
    "organizations": _load("compiled/organization.json"),
    "services": _load("compiled/service.json"),
    "locations": {"$ref": "location.json"},
}
TABULAR = _load("compiled/tabular.json")["properties"]


def validate(instance: dict, schema: dict) -> None:
    Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS).validate(instance)


def page(client, endpoint: str, params: dict | None = None, status: int = 200) -> dict:
    response = client.get(f"/hsds/{endpoint}", params or {})
    assert response.status_code == status, response.content[:500]
    body = response.json()
    if status == 200:
        schema = {
            "allOf": [PAGE],
            "required": ["total_items", "total_pages", "page_number", "size", "contents"],
            "properties": {"contents": {"type": "array", "items": ITEMS[endpoint]}},
        }
        validate(body, schema)
    return body


def every_page(client, endpoint: str, params: dict) -> list[dict]:
    contents, number = [], 1
    while True:
        body = page(client, endpoint, {**params, "page": number})
        contents += body["contents"]
        if body["last_page"]:
            assert number == body["total_pages"]
            return contents
        number += 1


@pytest.fixture
def listing():
    practitioner = PractitionerFactory(
        name="Jane Doe", credentials="DC", email="jane@example.com", website="https://jane.example"
    )
    LocationFactory(practitioner=practitioner, name="Poplar Spine Center")
    LocationFactory(practitioner=practitioner, name="", phone="", city="Germantown")
    PractitionerCertification.objects.create(
        practitioner=practitioner, certification=certification("art-spine")
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner, certification=certification("graston"), self_reported=True
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner,
        certification=certification("faktr"),
        expires_on=timezone.localdate() - dt.timedelta(days=1),
    )
    verify_certifications(
        practitioners=Practitioner.objects.filter(pk=practitioner.pk), source="ART directory"
    )
    PractitionerCertification.objects.filter(certification__slug="graston").update(verified_on=None)
    return practitioner


def hidden_listing() -> Practitioner:
    hidden = PractitionerFactory(name="Hidden Person", status=Practitioner.Status.DRAFT)
    LocationFactory(practitioner=hidden, name="Hidden Clinic")
    PractitionerCertification.objects.create(
        practitioner=hidden, certification=certification("art")
    )
    return hidden


def test_index_says_hsds_3_0_and_links_the_endpoints(client):
    body = client.get("/hsds/").json()
    assert body["version"] == "3.0"
    assert body["openapi_url"].endswith("schema/openapi.json")
    assert body["endpoints"]["services"] == "http://testserver/hsds/services"


def test_organizations_are_the_published_listings_valid_against_the_schema(client, listing):
    hidden_listing()
    body = page(client, "organizations")
    assert body["total_items"] == 1 and body["first_page"] and body["last_page"]
    [organization] = body["contents"]
    assert organization["id"] == hsds.hsds_id("organization", listing.pk)
    assert organization["name"] == "Jane Doe, DC"
    assert organization["email"] == "jane@example.com"
    assert organization["website"] == "https://jane.example"
    assert organization["phones"][0]["number"] == "(901) 555-0100"
    one = client.get(f"/hsds/organizations/{organization['id']}").json()
    validate(one, ITEMS["organizations"])
    assert one == organization


def test_each_current_certificate_is_a_service_at_every_clinic_with_its_certification_attribute(
    client, listing
):
    body = page(client, "services")
    by_name = {service["name"]: service for service in body["contents"]}
    # The expired FAKTR certificate is no service.
    assert set(by_name) == {"ART Spine", "Graston Technique"}
    art = by_name["ART Spine"]
    assert art["organization_id"] == hsds.hsds_id("organization", listing.pk)
    assert art["status"] == "active"
    assert art["assured_date"] == timezone.localdate().isoformat()
    assert art["accreditations"] == "Certified by Active Release Techniques, LLC"
    clinics = sorted(listing.locations.values_list("pk", flat=True))
    assert [sal["location_id"] for sal in art["service_at_locations"]] == [
        hsds.hsds_id("location", pk) for pk in clinics
    ]
    [attribute] = art["attributes"]
    assert attribute["value"] == "verified"
    assert attribute["link_entity"] == "service" and attribute["link_id"] == art["id"]
    term = attribute["taxonomy_term"]
    assert term["code"] == "art-spine" and term["name"] == "ART Spine"
    assert term["parent_id"] == hsds.hsds_id("taxonomy_term", certification("art").pk)
    assert term["taxonomy_id"] == hsds.TAXONOMY_ID
    graston = by_name["Graston Technique"]
    assert "assured_date" not in graston  # nobody checked it
    assert graston["attributes"][0]["value"] == "self-reported"
    one = client.get(f"/hsds/services/{art['id']}").json()
    validate(one, ITEMS["services"])
    assert one == art


def test_locations_carry_address_coordinates_and_their_organization(client, listing):
    hidden_listing()
    body = page(client, "locations")
    assert body["total_items"] == 2
    named = next(loc for loc in body["contents"] if loc["name"] == "Poplar Spine Center")
    [address] = named["addresses"]
    assert address["city"] == "Memphis" and address["postal_code"] == "38117"
    assert address["state_province"] == "TN" and address["country"] == "US"
    assert named["latitude"] == 35.1124 and named["location_type"] == "physical"
    assert named["organization_id"] == hsds.hsds_id("organization", listing.pk)
    unnamed = next(loc for loc in body["contents"] if loc["name"] != "Poplar Spine Center")
    assert unnamed["phones"] == []
    one = client.get(f"/hsds/locations/{named['id']}").json()
    validate(one, ITEMS["locations"])


def test_paging_to_the_last_page_lists_every_published_listing_once(client):
    listings = [practitioner_near_zip("38117", n, certifications=["art"]) for n in range(7)]
    hidden_listing()
    organizations = every_page(client, "organizations", {"per_page": 3})
    assert [o["id"] for o in organizations] == [
        hsds.hsds_id("organization", p.pk) for p in sorted(listings, key=lambda p: p.pk)
    ]
    assert len(every_page(client, "services", {"per_page": 2})) == 7
    assert len(every_page(client, "locations", {"per_page": 5})) == 7
    past_the_end = page(client, "organizations", {"per_page": 3, "page": 9})
    assert past_the_end["empty"] and past_the_end["contents"] == []


def test_modified_after_returns_only_what_changed_after_an_edit(client, listing):
    other = practitioner_near_zip("38117", 2, certifications=["graston"])
    past = timezone.now() - dt.timedelta(days=2)
    Practitioner.objects.update(updated_at=past)
    Location.objects.update(updated_at=past)
    since = (timezone.now() - dt.timedelta(minutes=1)).astimezone(dt.UTC)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert page(client, "organizations", {"modified_after": stamp})["contents"] == []
    assert page(client, "services", {"modified_after": stamp})["contents"] == []

    verify_certifications(
        practitioners=Practitioner.objects.filter(pk=other.pk), source="Graston roster"
    )
    [changed] = page(client, "organizations", {"modified_after": stamp})["contents"]
    assert changed["id"] == hsds.hsds_id("organization", other.pk)
    [service] = page(client, "services", {"modified_after": stamp})["contents"]
    assert service["assured_date"] == timezone.localdate().isoformat()
    assert service["last_modified"] > stamp
    clinic = listing.locations.first()
    clinic.name = "Renamed Clinic"
    clinic.save()
    [moved] = page(client, "locations", {"modified_after": stamp})["contents"]
    assert moved["name"] == "Renamed Clinic"
    # A date means from its start.
    assert (
        len(page(client, "locations", {"modified_after": since.date().isoformat()})["contents"])
        == 1
    )


def test_unpublished_listings_are_absent_from_every_endpoint(client, listing):
    hidden = hidden_listing()
    every = json.dumps([page(client, name)["contents"] for name in ITEMS])
    assert "Hidden" not in every
    record = hidden.certification_records.get()
    for path in [
        f"organizations/{hsds.hsds_id('organization', hidden.pk)}",
        f"services/{hsds.hsds_id('service', record.pk)}",
        f"locations/{hsds.hsds_id('location', hidden.locations.get().pk)}",
        "organizations/not-a-uuid",
        f"services/{hsds.hsds_id('organization', listing.pk)}",  # an id of another kind
    ]:
        assert client.get(f"/hsds/{path}").status_code == 404, path


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "500"}, "per_page"),
        ({"page": "first"}, "page"),
        ({"modified_after": "last tuesday"}, "modified_after"),
        ({"search": "doe"}, "Not supported here: search"),
        ({"format": "xml"}, "json only"),
    ],
)
def test_bad_parameters_answer_400_saying_what_is_wrong(client, params, words):
    for endpoint in ITEMS:
        body = page(client, endpoint, params, status=400)
        assert words in body["detail"]


def test_a_page_of_100_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    for n in range(101):
        practitioner_near_zip("38117", n / 10, certifications=["art", "graston"])
    with django_assert_max_num_queries(2):
        assert len(page(client, "organizations", {"per_page": 100})["contents"]) == 100
    with django_assert_max_num_queries(4):
        assert len(page(client, "services", {"per_page": 100})["contents"]) == 100
    with django_assert_max_num_queries(3):
        assert len(page(client, "locations", {"per_page": 100})["contents"]) == 100


def test_hours_access_closure_and_languages_are_schedules_accessibility_and_languages(client):
    from practitioners.practice import Language, OpeningHours

    practitioner = PractitionerFactory(name="Ana Ruiz")
    practitioner.languages.set(Language.objects.filter(code__in=["es", "ase"]))
    clinic = LocationFactory(
        practitioner=practitioner,
        public_transit=True,
        accessible_restroom=True,
        reopens_on=timezone.localdate() + dt.timedelta(days=5),
    )
    OpeningHours.objects.create(location=clinic, weekday=0, opens=dt.time(8), closes=dt.time(12))
    OpeningHours.objects.create(location=clinic, weekday=4, opens=dt.time(22), closes=dt.time(2))
    PractitionerCertification.objects.create(
        practitioner=practitioner, certification=certification("graston")
    )
    [served] = page(client, "locations")["contents"]
    monday, friday = served["schedules"]
    assert (monday["byday"], monday["opens_at"], monday["closes_at"]) == ("MO", "08:00", "12:00")
    assert (friday["byday"], friday["opens_at"], friday["closes_at"]) == ("FR", "22:00", "02:00")
    assert monday["freq"] == "WEEKLY" and "America/Chicago" in monday["description"]
    # Closed for now: the schedules hold from the day it reopens, and the location says so.
    assert monday["valid_from"] == clinic.reopens_on.isoformat()
    assert served["description"].startswith("Temporarily closed until")
    assert [a["description"] for a in served["accessibility"]] == [
        "Accessible restroom",
        "Near public transit",
    ]
    [service] = page(client, "services")["contents"]
    assert [(lang["code"], lang["name"]) for lang in service["languages"]] == [
        ("ase", "American Sign Language"),
        ("es", "Spanish"),
    ]


# --- The tabular export -------------------------------------------------------------------------


def _typed(table: str, row: dict) -> dict:
    """A CSV row back in JSON types, empty cells left out, for the table's row schema."""
    properties = TABULAR[table]["items"]["properties"]
    result = {}
    for name, text in row.items():
        if text == "":
            continue
        kind = properties[name].get("type")
        if kind == "number":
            result[name] = float(text)
        elif kind == "integer":
            result[name] = int(text)
        elif kind == "boolean":
            result[name] = text == "true"
        else:
            result[name] = text
    return result


def test_export_writes_every_table_and_a_datapackage_valid_against_the_schemas(
    client, listing, tmp_path
):
    from practitioners.practice import Language, OpeningHours

    hidden_listing()
    listing.languages.set(Language.objects.filter(code="es"))
    clinic = listing.locations.first()
    Location.objects.filter(pk=clinic.pk).update(parking=True)
    OpeningHours.objects.create(location=clinic, weekday=2, opens=dt.time(9), closes=dt.time(17))
    out = StringIO()
    call_command("export_hsds", str(tmp_path), "--batch", "1", stdout=out, stderr=StringIO())
    assert "1 organizations, 2 services and 2 locations written" in out.getvalue()
    package = json.loads((tmp_path / "datapackage.json").read_text())
    assert package["profile"] == "tabular-data-package"
    rows: dict[str, list[dict]] = {}
    for resource in package["resources"]:
        with (tmp_path / resource["path"]).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == [f["name"] for f in resource["schema"]["fields"]]
            rows[resource["name"]] = list(reader)
        for row in rows[resource["name"]]:
            validate(_typed(resource["name"], row), TABULAR[resource["name"]]["items"])
    assert [o["name"] for o in rows["organization"]] == ["Jane Doe, DC"]
    assert len(rows["service"]) == 2 and len(rows["service_at_location"]) == 4
    assert len(rows["location"]) == 2 and len(rows["address"]) == 2
    assert {a["value"] for a in rows["attribute"]} == {"verified", "self-reported"}
    assert len(rows["taxonomy"]) == 1
    assert [(r["byday"], r["opens_at"]) for r in rows["schedule"]] == [("WE", "09:00")]
    assert [r["description"] for r in rows["accessibility"]] == ["Parking on site"]
    assert [r["code"] for r in rows["language"]] == ["es", "es"]  # one per service
    assert "Hidden" not in json.dumps(rows)
    # The export holds what the API serves.
    api = {s["id"]: s for s in page(client, "services")["contents"]}
    for service in rows["service"]:
        assert service["name"] == api[service["id"]]["name"]
        assert service["assured_date"] == api[service["id"]].get("assured_date", "")


def test_export_dry_run_counts_and_writes_nothing(listing, tmp_path):
    out = StringIO()
    target = tmp_path / "nothing"
    call_command("export_hsds", str(target), "--dry-run", stdout=out, stderr=StringIO())
    assert "1 organizations, 2 services and 2 locations would be written" in out.getvalue()
    assert not target.exists()


def _exported(directory: Path) -> dict[str, list[dict]]:
    rows = {}
    for resource in json.loads((directory / "datapackage.json").read_text())["resources"]:
        with (directory / resource["path"]).open(newline="", encoding="utf-8") as handle:
            rows[resource["name"]] = list(csv.DictReader(handle))
    return rows


def test_exported_rows_are_the_api_objects_split_into_their_tables(client, tmp_path):
    from practitioners.practice import Language, OpeningHours

    for n in range(4):
        practitioner = practitioner_near_zip("38117", n, certifications=["art", "graston"])
        practitioner.languages.set(Language.objects.filter(code__in=["es", "ase"][: n % 3]))
        clinic = practitioner.locations.first()
        LocationFactory(practitioner=practitioner, name="", parking=bool(n % 2))
        OpeningHours.objects.create(
            location=clinic, weekday=n, opens=dt.time(8, 30), closes=dt.time(17)
        )
        OpeningHours.objects.create(
            location=clinic, weekday=5, opens=dt.time(22), closes=dt.time(2)
        )
    Location.objects.filter(pk=clinic.pk).update(
        reopens_on=timezone.localdate() + dt.timedelta(days=3), wheelchair_entrance=True
    )
    hidden_listing()
    call_command("export_hsds", str(tmp_path), "--batch", "3", stdout=StringIO(), stderr=StringIO())
    served: dict[str, list[dict]] = {}
    for endpoint, table in [
        ("organizations", "organization"),
        ("locations", "location"),
        ("services", "service"),
    ]:
        for entity in every_page(client, endpoint, {"per_page": 100}):
            for name, row in hsds.split_rows(table, entity):
                cells = {key: "" if value is None else str(value) for key, value in row.items()}
                served.setdefault(name, []).append(cells)
    exported = _exported(tmp_path)
    for table, api_rows in served.items():
        # Empty cells are what the CSV has for the columns an object leaves out.
        written = [
            {key: value for key, value in row.items() if value != ""} for row in exported[table]
        ]
        wanted = [{key: value for key, value in row.items() if value != ""} for row in api_rows]
        key = lambda row: row["id"]  # noqa: E731
        assert sorted(written, key=key) == sorted(wanted, key=key), table


def test_export_statements_depend_on_batches_not_on_listings(tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(name: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            call_command(
                "export_hsds",
                str(tmp_path / name),
                "--batch",
                "100",
                stdout=StringIO(),
                stderr=StringIO(),
            )
        return len(captured.captured_queries)

    practitioner_near_zip("38117", 0, certifications=["art"])
    one = statements("one")
    for n in range(1, 60):
        practitioner = practitioner_near_zip("38117", n / 10, certifications=["art", "graston"])
        LocationFactory(practitioner=practitioner)
    # The count for the progress bar (and SQLite's cache size), three reference tables, five
    # statements for the one batch and the empty read that ends it: sixty listings cost what
    # one does.
    assert statements("sixty") == one <= 2 + 3 + 5 + 1


def test_the_total_over_everything_is_counted_once_and_an_incremental_total_every_time(
    client, django_assert_max_num_queries
):
    for n in range(3):
        practitioner_near_zip("38117", n, certifications=["art"])
    assert page(client, "services", {"per_page": 1})["total_items"] == 3
    # The next page reuses the total: the page's rows, their clinics and languages only.
    with django_assert_max_num_queries(3):
        assert page(client, "services", {"per_page": 1, "page": 2})["total_items"] == 3
    since = (timezone.now() - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    Practitioner.objects.update(updated_at=timezone.now() - dt.timedelta(days=2))
    assert page(client, "organizations", {"modified_after": since})["total_items"] == 0
    edited = Practitioner.objects.first()
    edited.bio = "Edited."
    edited.save()
    changed = page(client, "organizations", {"modified_after": since})
    assert changed["total_items"] == 1 and changed["contents"][0]["description"] == "Edited."
