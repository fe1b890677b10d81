"""The FHIR R4 provider directory at /fhir/: Plan-Net shaped, read-only, published listings only.

Every response is parsed back through the fhirclient models (FHIR 4.0.1, strict), so a test
fails on anything invalid by the base specification; the Plan-Net rules the base models cannot
know are written down below from the implementation guide and checked on every resource.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory

from practitioners.curation.services import verify_certifications
from practitioners.models import Location, Practitioner, PractitionerCertification
from tests.factories import (
    LocationFactory,
    PractitionerFactory,
    certification,
    practitioner_near_zip,
    profession,
)

pytestmark = pytest.mark.django_db

PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
NPI = "http://hl7.org/fhir/sid/us-npi"
VALID_NPI = "1234567893"

# Da Vinci PDex Plan-Net 1.1.0 / 1.2.0 (STU1), the profiles' differentials as the IG publishes
# them: every resource declares its profile and carries meta.lastUpdated (1..1 in every
# Plan-Net profile). Per profile, the elements with a minimum cardinality of 1:
#   plannet-Practitioner      active (1..1, true), name (1..*) with family (1..1);
#                             qualification.code (1..1, base)
#   plannet-PractitionerRole  active (1..1, true); constraint pd-2: practitioner or
#                             organization; the newpatients and delivery-method extensions
#                             carry their required sub-extension (acceptingPatients, type)
#   plannet-Location          name (must support; we always give one), address, status
#   plannet-Organization      active (1..1, true), name (1..1), type (1..*)
REQUIRED = {
    "Practitioner": ["active", "name"],
    "PractitionerRole": ["active"],
    "Location": ["name", "address", "status"],
    "Organization": ["active", "name", "type"],
}


def check_plan_net(resource: dict) -> None:
    kind = resource["resourceType"]
    assert resource["meta"]["profile"] == [f"{PLAN_NET}plannet-{kind}"]
    assert resource["meta"]["lastUpdated"].endswith("Z")
    for element in REQUIRED[kind]:
        assert resource.get(element), f"{kind}.{element} is required by plannet-{kind}"
    if "active" in REQUIRED[kind]:
        assert resource["active"] is True
    if kind == "Practitioner":
        assert all(name.get("family") for name in resource["name"])
        assert all(q["code"] for q in resource.get("qualification", []))
    if kind == "PractitionerRole":
        assert "practitioner" in resource or "organization" in resource  # pd-2
        for extension in resource.get("extension", []):
            inner = {sub["url"] for sub in extension["extension"]}
            if extension["url"] == f"{PLAN_NET}newpatients":
                assert "acceptingPatients" in inner
            if extension["url"] == f"{PLAN_NET}delivery-method":
                assert "type" in inner


def parsed(response, status: int = 200) -> dict:
    """The response body, after fhirclient has parsed it strictly (and each Bundle entry)."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    FHIRElementFactory.instantiate(body["resourceType"], body)  # strict: raises if invalid
    if body["resourceType"] == "Bundle":
        for entry in body.get("entry", []):
            check_plan_net(entry["resource"])
    elif body["resourceType"] in REQUIRED:
        check_plan_net(body)
    return body


def get(client, path: str, params: dict | None = None, status: int = 200) -> dict:
    return parsed(client.get(f"/fhir/{path}", params or {}), status)


def ids(bundle: dict, mode: str = "match", kind: str | None = None) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == mode
        and (kind is None or entry["resource"]["resourceType"] == kind)
    ]


def all_pages(client, path: str, params: dict) -> tuple[list[str], int]:
    """Follow the Bundle's next links to the end: every match id, and how many pages."""
    bundle = get(client, path, params)
    found, pages = ids(bundle), 1
    while True:
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        if "next" not in links:
            return found, pages
        url = urlsplit(links["next"])
        assert url.netloc == "testserver"
        bundle = parsed(client.get(f"{url.path}?{url.query}"))
        found += ids(bundle)
        pages += 1


@pytest.fixture
def listing():
    """A published chiropractor with an NPI, two clinics (one named) and four certificates:
    verified, self-reported, current with dates, expired."""
    practitioner = PractitionerFactory(
        name="Jane Q. Doe",
        credentials="DC, CCSP",
        npi=VALID_NPI,
        email="jane@example.com",
        telehealth=True,
        accepting_new_patients=False,
    )
    named = LocationFactory(practitioner=practitioner, name="Poplar Spine Center")
    LocationFactory(
        practitioner=practitioner,
        name="",
        address_line1="9 Main St",
        city="Germantown",
        postal_code="38138",
        latitude=35.08,
        longitude=-89.79,
    )
    on = timezone.localdate()
    PractitionerCertification.objects.create(
        practitioner=practitioner, certification=certification("art-spine"), credential_number="A1"
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner,
        certification=certification("graston-m1"),
        earned_on=on - dt.timedelta(days=400),
        expires_on=on + dt.timedelta(days=300),
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner, certification=certification("faktr"), self_reported=True
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner,
        certification=certification("mckenzie-mdt"),
        expires_on=on - dt.timedelta(days=1),
    )
    verify_certifications(
        practitioners=Practitioner.objects.filter(pk=practitioner.pk), source="ART directory"
    )
    PractitionerCertification.objects.filter(
        practitioner=practitioner, certification__slug__in=["faktr", "graston-m1"]
    ).update(verified_on=None, verification_source="")
    practitioner.refresh_from_db()
    practitioner.named_clinic = named
    return practitioner


def unpublished() -> Practitioner:
    hidden = PractitionerFactory(
        name="Hidden Person", status=Practitioner.Status.SUSPENDED, npi="1245319599"
    )
    LocationFactory(practitioner=hidden, name="Hidden Clinic")
    PractitionerCertification.objects.create(
        practitioner=hidden, certification=certification("art")
    )
    return hidden


# --- metadata, read, errors ---------------------------------------------------------------------


def test_metadata_is_a_capability_statement_naming_every_type_parameter_and_include(client):
    statement = get(client, "metadata")
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert "application/fhir+json" in statement["format"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Practitioner", "PractitionerRole", "Location", "Organization"}
    names = {kind: {p["name"] for p in r["searchParam"]} for kind, r in resources.items()}
    assert {"identifier", "name", "family", "given", "qualification-code"} <= names["Practitioner"]
    assert {"practitioner", "location", "specialty"} <= names["PractitionerRole"]
    assert {"address-postalcode", "address-city", "address-state", "near"} <= names["Location"]
    assert all({"_count", "_lastUpdated"} <= found for found in names.values())
    assert "PractitionerRole:practitioner" in resources["PractitionerRole"]["searchInclude"]
    assert resources["Practitioner"]["profile"] == f"{PLAN_NET}plannet-Practitioner"


def test_practitioner_has_npi_name_and_current_certifications_with_issuer_period_verification(
    client, listing
):
    resource = get(client, f"Practitioner/{listing.pk}")
    assert resource["identifier"] == [
        {
            "use": "official",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NPI"}
                ]
            },
            "system": NPI,
            "value": VALID_NPI,
        }
    ]
    [name] = resource["name"]
    assert name["family"] == "Doe" and name["given"] == ["Jane", "Q."]
    assert name["suffix"] == ["DC", "CCSP"] and name["text"] == "Jane Q. Doe"
    qualifications = {q["code"]["coding"][0]["code"]: q for q in resource["qualification"]}
    # The expired McKenzie certificate is not a qualification any more.
    assert set(qualifications) == {"art-spine", "graston-m1", "faktr"}
    art = qualifications["art-spine"]
    assert art["code"]["coding"][0]["display"] == "ART Spine"
    assert art["code"]["coding"][0]["system"].endswith("/fhir/CodeSystem/certification")
    assert art["issuer"] == {"display": "Active Release Techniques, LLC"}
    assert art["identifier"] == [{"value": "A1"}]
    [verified] = art["extension"]
    assert (
        verified["url"]
        == "http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-verification-status"
    )
    assert verified["valueCodeableConcept"]["coding"][0]["code"] == "complete"
    assert "ART directory" in verified["valueCodeableConcept"]["text"]
    graston = qualifications["graston-m1"]
    on = timezone.localdate()
    assert graston["period"] == {
        "start": (on - dt.timedelta(days=400)).isoformat(),
        "end": (on + dt.timedelta(days=300)).isoformat(),
    }
    # Only what staff checked says verified.
    assert "extension" not in graston and "extension" not in qualifications["faktr"]
    telecom = {t["system"]: t["value"] for t in resource["telecom"]}
    assert telecom == {"phone": "(901) 555-0100", "email": "jane@example.com"}


def test_location_role_and_organization_read_back_with_address_position_and_plan_net_extensions(
    client, listing
):
    clinic = listing.named_clinic
    location = get(client, f"Location/{clinic.pk}")
    assert location["name"] == "Poplar Spine Center"
    assert location["address"]["city"] == "Memphis" and location["address"]["postalCode"] == "38117"
    assert location["address"]["line"] == [clinic.address_line1]
    assert location["position"] == {"latitude": 35.1124, "longitude": -89.9034}
    assert location["managingOrganization"]["reference"] == f"Organization/{clinic.pk}"

    role = get(client, f"PractitionerRole/{clinic.pk}")
    assert role["practitioner"]["reference"] == f"Practitioner/{listing.pk}"
    assert role["location"] == [{"reference": f"Location/{clinic.pk}"}]
    assert role["organization"]["reference"] == f"Organization/{clinic.pk}"
    [specialty] = role["specialty"]
    assert specialty["coding"][0] == {
        "system": "http://nucc.org/provider-taxonomy",
        "code": "111N00000X",
        "display": "Chiropractor",
    }
    by_url: dict[str, list] = {}
    for extension in role["extension"]:
        by_url.setdefault(extension["url"], []).append(extension)
    methods = [
        sub["valueCodeableConcept"]["coding"][0]["code"]
        for extension in by_url[f"{PLAN_NET}delivery-method"]
        for sub in extension["extension"]
        if sub["url"] == "type"
    ]
    assert methods == ["physical", "virtual"]  # telehealth is the virtual delivery method
    [accepting] = by_url[f"{PLAN_NET}newpatients"]
    assert accepting["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "nopt"

    organization = get(client, f"Organization/{clinic.pk}")
    assert organization["name"] == "Poplar Spine Center"
    assert organization["type"][0]["coding"][0]["code"] == "prvgrp"
    unnamed = Location.objects.filter(practitioner=listing, name="").get()
    assert get(client, f"Organization/{unnamed.pk}", status=404)["issue"][0]["code"] == "not-found"


def test_unknown_ids_types_and_unpublished_listings_answer_404_operation_outcomes(client, listing):
    hidden = unpublished()
    hidden_clinic = hidden.locations.get()
    for path in [
        "Practitioner/999999",
        "Practitioner/abc",
        f"Practitioner/{hidden.pk}",
        f"Location/{hidden_clinic.pk}",
        f"PractitionerRole/{hidden_clinic.pk}",
        f"Organization/{hidden_clinic.pk}",
    ]:
        outcome = get(client, path, status=404)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-found"
    assert get(client, "Patient", status=404)["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("Practitioner", {"birthdate": "2000-01-01"}, "cannot be searched by 'birthdate'"),
        ("Practitioner", {"name:exact": "Doe"}, "modifiers"),
        ("Practitioner", {"_count": "0"}, "_count"),
        ("Practitioner", {"_count": "101"}, "_count"),
        ("Practitioner", {"_count": "ten"}, "_count"),
        ("Practitioner", {"_lastUpdated": "yesterday"}, "_lastUpdated"),
        ("Practitioner", {"_lastUpdated": "gt2026-01-01T10:00:00"}, "time zone"),
        ("Practitioner", {"_format": "xml"}, "JSON only"),
        ("Practitioner", {"_cursor": "x"}, "_cursor"),
        ("PractitionerRole", {"practitioner": "Patient/x"}, "Practitioner reference"),
        ("PractitionerRole", {"_include": "PractitionerRole:endpoint"}, "_include"),
        ("Location", {"near": "35.1"}, "latitude|longitude"),
        ("Location", {"near": "35.1|-89.9|ten|mi"}, "number"),
        ("Location", {"near": "35.1|-89.9|10|furlong"}, "unit"),
        ("Location", {"near": "95|-89.9|10|mi"}, "lat"),
        ("Location", {"near": "35.1|-89.9|900|mi"}, "radius"),
        ("Location", {"near": "35.1|-89.9|10|mi", "address-city": "Memphis"}, "combines only"),
        ("Location", {"_page": "2"}, "cannot be searched by '_page'"),
        ("Organization", {"near": "35.1|-89.9"}, "cannot be searched by 'near'"),
    ],
)
def test_bad_parameters_answer_400_operation_outcomes_that_say_what_is_wrong(
    client, path, params, words
):
    outcome = get(client, path, params, status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "error" and issue["code"] == "invalid"
    assert words in issue["diagnostics"]


def test_format_json_and_fhir_json_are_accepted(client, listing):
    for value in ["json", "application/fhir+json", "application/json"]:
        bundle = get(client, "Practitioner", {"_format": value})
        assert ids(bundle) == [str(listing.pk)]


def test_served_resources_pass_the_library_and_invalid_ones_would_not():
    from practitioners.feeds import fhir

    with pytest.raises(FHIRValidationError):
        fhir.checked({"resourceType": "Practitioner", "qualification": [{"issuer": {}}]})


# --- searches -----------------------------------------------------------------------------------


def test_practitioner_search_by_identifier_name_family_given_and_qualification_code(
    client, listing
):
    other = PractitionerFactory(name="John Smithson", npi="1245319599")
    PractitionerCertification.objects.create(
        practitioner=other, certification=certification("graston")
    )
    jane, john = str(listing.pk), str(other.pk)

    def found(**params):
        return ids(get(client, "Practitioner", params))

    assert found(identifier=VALID_NPI) == [jane]
    assert found(identifier=f"{NPI}|{VALID_NPI}") == [jane]
    assert found(identifier=f"urn:other|{VALID_NPI}") == []
    assert found(name="doe") == [jane]
    assert found(name="jo") == [john]
    assert found(name="oe") == []  # from the start of a word, as FHIR string search matches
    assert found(family="Smith") == [john]  # Smithson starts with Smith
    assert found(family="Jane") == []
    assert found(given="jan") == [jane]
    assert found(given="Doe") == []
    # A level counts for its technique, as on the search page.
    assert found(**{"qualification-code": "art"}) == [jane]
    assert found(**{"qualification-code": "graston"}) == sorted([jane, john], key=int)
    assert found(**{"qualification-code": "mckenzie-mdt"}) == []  # expired
    assert found(**{"qualification-code": "faktr,art"}) == [jane]
    assert found(**{"qualification-code": "nonexistent"}) == []


def test_practitioner_role_search_by_practitioner_location_specialty_and_organization(
    client, listing
):
    therapist = PractitionerFactory(
        name="Pat Therapist", profession=profession("physical-therapist")
    )
    LocationFactory(practitioner=therapist, name="")
    clinics = sorted(str(pk) for pk in listing.locations.values_list("pk", flat=True))
    named = str(listing.named_clinic.pk)

    def found(**params):
        return ids(get(client, "PractitionerRole", params))

    assert found(practitioner=f"Practitioner/{listing.pk}") == clinics
    assert found(practitioner=str(listing.pk)) == clinics
    assert found(location=f"Location/{named}") == [named]
    assert found(organization=f"Organization/{named}") == [named]
    assert found(specialty="111N00000X") == clinics
    assert found(specialty="http://nucc.org/provider-taxonomy|225100000X") == [
        str(therapist.locations.get().pk)
    ]
    assert found(specialty="urn:other|111N00000X") == []


def test_practitioner_role_include_brings_the_practitioner_location_and_organization_once(
    client, listing
):
    bundle = get(
        client,
        "PractitionerRole",
        {
            "practitioner": listing.pk,
            "_include": ["PractitionerRole:practitioner", "PractitionerRole:location"],
        },
    )
    assert len(ids(bundle)) == 2
    assert ids(bundle, "include", "Practitioner") == [str(listing.pk)]
    assert sorted(ids(bundle, "include", "Location")) == sorted(ids(bundle))
    assert ids(bundle, "include", "Organization") == []
    everything = get(client, "PractitionerRole", {"practitioner": listing.pk, "_include": "*"})
    assert ids(everything, "include", "Organization") == [str(listing.named_clinic.pk)]
    included = [e["resource"] for e in everything["entry"] if e["search"]["mode"] == "include"]
    practitioner = next(r for r in included if r["resourceType"] == "Practitioner")
    assert len(practitioner["qualification"]) == 3


def test_location_search_by_postal_code_city_state_and_organization(client, listing):
    PractitionerFactory()  # without a clinic: no location at all
    LocationFactory(city="Nashville", state="TN", postal_code="37203")
    LocationFactory(city="Oxford", state="MS", postal_code="38655")
    germantown = str(Location.objects.get(city="Germantown").pk)

    def found(**params):
        return ids(get(client, "Location", params))

    assert found(**{"address-postalcode": "38138"}) == [germantown]
    assert found(**{"address-city": "german"}) == [germantown]
    assert len(found(**{"address-state": "tn"})) == 3
    assert len(found(**{"address-state": "MS"})) == 1
    named = str(listing.named_clinic.pk)
    assert found(organization=f"Organization/{named}") == [named]
    organizations = ids(get(client, "Organization", {"name": "poplar"}))
    assert organizations == [named]
    assert len(ids(get(client, "Organization"))) == 3  # the named clinics only


def test_location_near_answers_what_the_search_page_shows_for_the_same_point_and_radius(client):
    # 30 practitioners up to 29 miles north of 38117, some with a second, farther clinic.
    for miles in range(30):
        practitioner = practitioner_near_zip("38117", miles * 1.0 + 0.5)
        if miles % 3 == 0:
            LocationFactory(
                practitioner=practitioner,
                latitude=35.1124 + (miles + 3) / 69.05,
                longitude=-89.9034,
            )
    unpublished()
    point = {"lat": "35.1124", "lon": "-89.9034", "radius": "25"}
    page_rows = []
    number = 1
    while True:
        response = client.get("/search/", {**point, "page": number})
        results = response.context["results"]
        page_rows += [str(p.nearest_location.pk) for p in results.page.object_list]
        if not results.page.has_next():
            break
        number += 1
    assert len(page_rows) == 25

    fhir_rows, pages = all_pages(
        client, "Location", {"near": "35.1124|-89.9034|25|mi", "_count": "20"}
    )
    assert fhir_rows == page_rows and pages == 2
    in_km, _ = all_pages(client, "Location", {"near": f"35.1124|-89.9034|{25 * 1.609344}|km"})
    assert in_km == page_rows
    first = get(client, "Location", {"near": "35.1124|-89.9034|25|mi"})
    assert first["total"] == 25


def test_paging_follows_next_links_to_the_end_and_every_listing_appears_once(client):
    listings = [practitioner_near_zip("38117", n) for n in range(7)]
    unpublished()
    expected = sorted(str(p.pk) for p in listings)
    found, pages = all_pages(client, "Practitioner", {"_count": "3"})
    assert found == expected and pages == 3
    clinics = sorted(str(p.locations.get().pk) for p in listings)
    for kind in ("Location", "PractitionerRole", "Organization"):
        found, pages = all_pages(client, kind, {"_count": "2"})
        assert found == clinics and pages == 4


def test_last_updated_finds_what_changed_after_an_edit(client, listing):
    other = PractitionerFactory(name="Unchanged Person")
    LocationFactory(practitioner=other)
    past = timezone.now() - dt.timedelta(days=3)
    Practitioner.objects.update(updated_at=past)
    Location.objects.update(updated_at=past)
    since = (timezone.now() - dt.timedelta(minutes=1)).astimezone(dt.UTC)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(get(client, "Practitioner", {"_lastUpdated": f"gt{stamp}"})) == []

    # Staff verify Jane's certificates: her Practitioner resource changed.
    verify_certifications(
        practitioners=Practitioner.objects.filter(pk=listing.pk), source="Graston roster"
    )
    assert ids(get(client, "Practitioner", {"_lastUpdated": f"gt{stamp}"})) == [str(listing.pk)]
    assert ids(get(client, "Practitioner", {"_lastUpdated": f"lt{stamp}"})) == [str(other.pk)]
    today = timezone.now().astimezone(dt.UTC).date().isoformat()
    assert ids(get(client, "Practitioner", {"_lastUpdated": today})) == [str(listing.pk)]
    # Her roles changed with her; a clinic edit changes its Location and its role only.
    roles = ids(get(client, "PractitionerRole", {"_lastUpdated": f"ge{stamp}"}))
    assert roles == sorted(str(pk) for pk in listing.locations.values_list("pk", flat=True))
    clinic = other.locations.get()
    clinic.phone = "(901) 555-0199"
    clinic.save()
    assert ids(get(client, "Location", {"_lastUpdated": f"gt{stamp}"})) == [str(clinic.pk)]
    changed = get(client, "Location", {"_lastUpdated": f"gt{stamp}"})["entry"][0]["resource"]
    assert changed["meta"]["lastUpdated"] > stamp


def test_unpublished_listings_appear_in_no_search(client, listing):
    hidden = unpublished()
    clinic = str(hidden.locations.get().pk)
    hidden_resources = {
        ("Practitioner", str(hidden.pk)),
        ("Location", clinic),
        ("PractitionerRole", clinic),
        ("Organization", clinic),
    }
    searches = [
        ("Practitioner", {}),
        ("Practitioner", {"identifier": hidden.npi}),
        ("Practitioner", {"name": "Hidden"}),
        ("Practitioner", {"qualification-code": "art"}),
        ("PractitionerRole", {"_include": "*"}),
        ("PractitionerRole", {"practitioner": hidden.pk}),
        ("Location", {}),
        ("Location", {"near": "35.1124|-89.9034|25|mi"}),
        ("Organization", {"name": "Hidden"}),
    ]
    for path, params in searches:
        bundle = get(client, path, params)
        served = {
            (e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle.get("entry", [])
        }
        assert not served & hidden_resources, (path, params)


def test_a_page_of_100_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    for n in range(101):
        practitioner = practitioner_near_zip("38117", n / 10, certifications=["art", "graston"])
        if n % 2:
            LocationFactory(practitioner=practitioner, name="")
    with django_assert_max_num_queries(3):
        bundle = get(client, "Practitioner", {"_count": "100"})
    assert len(ids(bundle)) == 100
    with django_assert_max_num_queries(5):
        bundle = get(client, "PractitionerRole", {"_count": "100", "_include": "*"})
    assert len(ids(bundle)) == 100
    with django_assert_max_num_queries(2):
        assert len(ids(get(client, "Location", {"_count": "100"}))) == 100
    with django_assert_max_num_queries(2):
        assert len(ids(get(client, "Organization", {"_count": "100"}))) == 100
    with django_assert_max_num_queries(6):
        near = get(client, "Location", {"near": "35.1124|-89.9034|25|mi", "_count": "100"})
    assert len(ids(near)) == 100


# --- Practice details (issue 17's data) ---------------------------------------------------------


def test_practice_details_gender_languages_hours_access_closure_and_new_patient_status(client):
    from practitioners.practice import Language, NewPatients, OpeningHours

    practitioner = PractitionerFactory(
        name="Ana Ruiz", gender="female", new_patients=NewPatients.EXISTING_AND_FAMILY
    )
    practitioner.languages.set(Language.objects.filter(code__in=["es", "ase"]))
    clinic = LocationFactory(
        practitioner=practitioner,
        wheelchair_entrance=True,
        parking=True,
        reopens_on=timezone.localdate() + dt.timedelta(days=10),
    )
    T = dt.time
    for weekday, opens, closes in [
        (0, T(8), T(12)),
        (0, T(13), T(18)),
        (4, T(22), T(2)),
        (6, T(0), T(0)),
    ]:
        OpeningHours.objects.create(location=clinic, weekday=weekday, opens=opens, closes=closes)

    resource = get(client, f"Practitioner/{practitioner.pk}")
    assert resource["gender"] == "female"
    assert [c["coding"][0]["code"] for c in resource["communication"]] == ["ase", "es"]
    assert resource["communication"][1]["coding"][0]["system"] == "urn:ietf:bcp:47"

    location = get(client, f"Location/{clinic.pk}")
    assert location["hoursOfOperation"] == [
        {"daysOfWeek": ["mon"], "openingTime": "08:00:00", "closingTime": "12:00:00"},
        {"daysOfWeek": ["mon"], "openingTime": "13:00:00", "closingTime": "18:00:00"},
        # Friday 22:00 to 2:00 is two intervals: FHIR times end at 23:59:59.
        {"daysOfWeek": ["fri"], "openingTime": "22:00:00", "closingTime": "23:59:59"},
        {"daysOfWeek": ["sat"], "openingTime": "00:00:00", "closingTime": "02:00:00"},
        {"daysOfWeek": ["sun"], "allDay": True},
    ]
    access = [e["valueCodeableConcept"] for e in location["extension"]]
    assert access == [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AccessibilityCS",
                    "code": "handiaccess",
                }
            ],
            "text": "Wheelchair-accessible entrance",
        },
        {"text": "Parking on site"},
    ]
    assert location["status"] == "suspended"
    assert location["availabilityExceptions"].startswith("Temporarily closed until")
    Location.objects.filter(pk=clinic.pk).update(reopens_on=timezone.localdate())
    assert get(client, f"Location/{clinic.pk}")["status"] == "active"  # reopened today

    role = get(client, f"PractitionerRole/{clinic.pk}")
    [status] = [e for e in role["extension"] if e["url"] == f"{PLAN_NET}newpatients"]
    assert status["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "existptfam"
    for value, code in [
        (NewPatients.ACCEPTING, "newpt"),
        (NewPatients.NOT_ACCEPTING, "nopt"),
        (NewPatients.EXISTING_ONLY, "existptonly"),
    ]:
        Practitioner.objects.filter(pk=practitioner.pk).update(new_patients=value)
        role = get(client, f"PractitionerRole/{clinic.pk}")
        [status] = [e for e in role["extension"] if e["url"] == f"{PLAN_NET}newpatients"]
        assert status["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == code


def test_a_resource_the_models_would_write_differently_is_refused_where_responses_are_checked():
    from practitioners.feeds import fhir

    # An empty list is dropped by the models: served unchecked it would differ from what the
    # tests saw, so the check refuses it.
    resource = {"resourceType": "Organization", "active": True, "name": "X", "alias": []}
    with pytest.raises(ValueError, match="alias"):
        fhir.check(resource)


def test_production_serves_the_builders_output_unchecked(client, listing, settings):
    settings.FHIR_CHECK_RESPONSES = False
    checked_off = client.get("/fhir/PractitionerRole", {"_include": "*"}).content
    settings.FHIR_CHECK_RESPONSES = True
    assert client.get("/fhir/PractitionerRole", {"_include": "*"}).content == checked_off
