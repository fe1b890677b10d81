"""Listings as FHIR R4 resources shaped by the Da Vinci PDex Plan-Net profiles: the one place
the FHIR mapping is decided (docs/fhir.md has the table).

- a published listing is a ``Practitioner`` (NPI identifier, name, current certificates as
  ``qualification``);
- each of its clinics is a ``Location`` and a ``PractitionerRole`` (that practitioner at that
  clinic, with the profession's NUCC taxonomy code as ``specialty`` and the delivery methods);
- a clinic with a name is also an ``Organization`` (the practice the name stands for).

Ids: ``Practitioner/<listing id>``, ``Location/<clinic id>``, ``PractitionerRole/<clinic id>``,
``Organization/<clinic id>``; one clinic row is one practitioner at one address, so a role and
its location share the id.

Every resource is built as plain JSON. Under DEBUG and the tests (``FHIR_CHECK_RESPONSES``)
every response is passed through the ``fhirclient`` models (FHIR 4.0.1) before it is served
(:func:`check`): invalid by the base specification, or not exactly what the models write back,
and it raises instead of leaving. Production serves the same builders' output unchecked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import cache

from django.conf import settings
from django.utils import timezone
from nameparser import HumanName

from ..models import Location, Practitioner, PractitionerCertification, TaxonomyMapping
from ..practice import Language, NewPatients, OpeningHours, Weekday

FHIR_VERSION = "4.0.1"
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
PROFILE = {
    "Practitioner": f"{PLAN_NET}/StructureDefinition/plannet-Practitioner",
    "PractitionerRole": f"{PLAN_NET}/StructureDefinition/plannet-PractitionerRole",
    "Location": f"{PLAN_NET}/StructureDefinition/plannet-Location",
    "Organization": f"{PLAN_NET}/StructureDefinition/plannet-Organization",
}
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DELIVERY_METHOD = f"{PLAN_NET}/StructureDefinition/delivery-method"
DELIVERY_METHOD_CS = f"{PLAN_NET}/CodeSystem/DeliveryMethodCS"
VIRTUAL_MODALITIES_CS = f"{PLAN_NET}/CodeSystem/VirtualModalitiesCS"
NEW_PATIENTS = f"{PLAN_NET}/StructureDefinition/newpatients"
ACCEPTING_PATIENTS_CS = f"{PLAN_NET}/CodeSystem/AcceptingPatientsCS"
ORG_TYPE_CS = f"{PLAN_NET}/CodeSystem/OrgTypeCS"
ACCESSIBILITY = f"{PLAN_NET}/StructureDefinition/accessibility"
ACCESSIBILITY_CS = f"{PLAN_NET}/CodeSystem/AccessibilityCS"
BCP_47 = "urn:ietf:bcp:47"
# Plan-Net has no verification extension of its own; the HL7 National Directory's is the one
# its successor profiles use (docs/fhir.md).
VERIFICATION_STATUS = "http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-verification-status"
VERIFICATION_STATUS_CS = "http://hl7.org/fhir/us/ndh/CodeSystem/NdhVerificationStatusCS"


@cache
def _models() -> dict[str, type]:
    """The fhirclient model classes, imported on the first FHIR request rather than when the
    URLs load: fhirclient brings requests and 0.8 s of imports every worker would pay at boot."""
    from fhirclient.models.bundle import Bundle
    from fhirclient.models.capabilitystatement import CapabilityStatement
    from fhirclient.models.location import Location as FhirLocation
    from fhirclient.models.operationoutcome import OperationOutcome
    from fhirclient.models.organization import Organization
    from fhirclient.models.practitioner import Practitioner as FhirPractitioner
    from fhirclient.models.practitionerrole import PractitionerRole

    return {
        "Practitioner": FhirPractitioner,
        "PractitionerRole": PractitionerRole,
        "Location": FhirLocation,
        "Organization": Organization,
        "CapabilityStatement": CapabilityStatement,
        "OperationOutcome": OperationOutcome,
        "Bundle": Bundle,
    }


def certification_system() -> str:
    """Our code system for techniques and their levels: the codes are the certification slugs
    (the same ones the search page's ``certification=`` takes)."""
    return f"{settings.SITE_URL.rstrip('/')}/fhir/CodeSystem/certification"


def checked(resource: dict) -> dict:
    """``resource`` parsed by the fhirclient model of its type and written back: a missing
    required element, a wrong type or an unknown element raises FHIRValidationError here
    instead of reaching a client."""
    return _models()[resource["resourceType"]](resource, strict=True).as_json()


def check(resource: dict) -> None:
    """Raise unless ``resource`` is valid by the base specification *and* exactly what the
    models write back: then serving it unchecked (``FHIR_CHECK_RESPONSES`` off, production)
    serves what the checked responses of the tests were. The check is most of a page's time
    (parsing and re-serialising every element), so it runs under DEBUG and the tests."""
    written = checked(resource)
    if written != resource:
        changed = sorted(
            key for key in {*written, *resource} if written.get(key) != resource.get(key)
        )
        raise ValueError(
            f"{resource['resourceType']} changes when the FHIR models write it back: "
            f"{', '.join(changed)}"
        )


def instant(value: dt.datetime) -> str:
    """A FHIR instant in UTC ("2026-12-01T21:00:00.123456Z")."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _meta(kind: str, updated_at: dt.datetime) -> dict:
    return {"lastUpdated": instant(updated_at), "profile": [PROFILE[kind]]}


def _phone(number: str) -> list[dict]:
    return [{"system": "phone", "value": number, "use": "work"}] if number else []


# --- Practitioner ------------------------------------------------------------------------------


def human_name(name: str, credentials: str) -> dict:
    """The listing's one name field split the way nameparser reads it ("Jane Q. Doe" ->
    given Jane, Q., family Doe); Plan-Net requires a family name, so a one-word name is it."""
    parsed = HumanName(name)
    given = [part for part in (parsed.first, parsed.middle) if part]
    family = parsed.last or parsed.first or name
    if not parsed.last:
        given = []
    result: dict = {"use": "official", "text": name, "family": family}
    if given:
        result["given"] = " ".join(given).split()
    if parsed.title:
        result["prefix"] = [parsed.title]
    suffixes = [part.strip() for part in credentials.split(",") if part.strip()]
    if parsed.suffix:
        suffixes = [parsed.suffix, *suffixes]
    if suffixes:
        result["suffix"] = suffixes
    return result


def qualification(record: PractitionerCertification) -> dict:
    certification = record.certification
    result: dict = {
        "code": {
            "coding": [
                {
                    "system": certification_system(),
                    "code": certification.slug,
                    "display": certification.name,
                }
            ],
            "text": certification.name,
        }
    }
    if record.credential_number:
        result["identifier"] = [{"value": record.credential_number}]
    period = {}
    if record.earned_on:
        period["start"] = record.earned_on.isoformat()
    if record.expires_on:
        period["end"] = record.expires_on.isoformat()
    if period:
        result["period"] = period
    if certification.issuing_body:
        result["issuer"] = {"display": certification.issuing_body}
    if record.verified_on is not None:
        # Only what staff checked carries a verification status; a self-reported or never
        # checked certificate is listed without one.
        text = f"Verified by directory staff on {record.verified_on.isoformat()}"
        if record.verification_source:
            text += f" against {record.verification_source}"
        result["extension"] = [
            {
                "url": VERIFICATION_STATUS,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": VERIFICATION_STATUS_CS,
                            "code": "complete",
                            "display": "Complete",
                        }
                    ],
                    "text": text,
                },
            }
        ]
    return result


def practitioner_resource(
    practitioner: Practitioner,
    certificates: Iterable[PractitionerCertification],
    on: dt.date,
    languages: Sequence[Language] = (),
) -> dict:
    """``certificates``: the listing's certificate records with their certifications; only the
    current ones are published (an expired certificate is not a qualification). ``languages``:
    those spoken at the practice (``communication``, ISO 639 codes are BCP 47 tags)."""
    resource: dict = {
        "resourceType": "Practitioner",
        "id": str(practitioner.pk),
        "meta": _meta("Practitioner", practitioner.updated_at),
        "active": True,
        "name": [human_name(practitioner.name, practitioner.credentials)],
    }
    if practitioner.npi:
        resource["identifier"] = [
            {
                "use": "official",
                "type": {"coding": [{"system": V2_0203, "code": "NPI"}]},
                "system": NPI_SYSTEM,
                "value": practitioner.npi,
            }
        ]
    if practitioner.gender:
        resource["gender"] = practitioner.gender  # "female" / "male": FHIR's own codes
    telecom = _phone(practitioner.phone)
    if practitioner.email:
        telecom.append({"system": "email", "value": practitioner.email, "use": "work"})
    if practitioner.website:
        telecom.append({"system": "url", "value": practitioner.website, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    current = [record for record in certificates if record.is_current(on)]
    current.sort(key=lambda record: record.certification.name)
    if current:
        resource["qualification"] = [qualification(record) for record in current]
    if languages:
        resource["communication"] = [
            {
                "coding": [{"system": BCP_47, "code": language.code, "display": language.name}],
                "text": language.name,
            }
            for language in sorted(languages, key=lambda language: language.name)
        ]
    return resource


# --- Location, PractitionerRole, Organization ----------------------------------------------------


def address(location: Location) -> dict:
    lines = [line for line in (location.address_line1, location.address_line2) if line]
    return {
        "use": "work",
        "type": "physical",
        "text": location.one_line_address,
        "line": lines,
        "city": location.city,
        "state": location.state,
        "postalCode": location.postal_code,
        "country": "US",
    }


_DAYS = {day.value: day.label[:3].lower() for day in Weekday}  # 0 -> "mon"
# What Plan-Net's AccessibilityCS has a code for; the rest are said in words.
_ACCESS = [
    ("wheelchair_entrance", "handiaccess", "Wheelchair-accessible entrance"),
    ("accessible_restroom", None, "Accessible restroom"),
    ("parking", None, "Parking on site"),
    ("public_transit", "pubtrans", "Near public transit"),
]


def hours_of_operation(hours: Iterable[OpeningHours]) -> list[dict]:
    """The weekly schedule in the clinic's own time (FHIR's hoursOfOperation has no zone, the
    clinic's address gives it). An interval past midnight is two: FHIR times stop at 23:59:59;
    0:00-0:00 is the whole day."""
    result = []
    for interval in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        day = _DAYS[interval.weekday]
        if interval.opens == interval.closes == dt.time(0):
            result.append({"daysOfWeek": [day], "allDay": True})
        elif interval.closes <= interval.opens:
            result.append(
                {
                    "daysOfWeek": [day],
                    "openingTime": interval.opens.strftime("%H:%M:%S"),
                    "closingTime": "23:59:59",
                }
            )
            if interval.closes != dt.time(0):
                result.append(
                    {
                        "daysOfWeek": [_DAYS[(interval.weekday + 1) % 7]],
                        "openingTime": "00:00:00",
                        "closingTime": interval.closes.strftime("%H:%M:%S"),
                    }
                )
        else:
            result.append(
                {
                    "daysOfWeek": [day],
                    "openingTime": interval.opens.strftime("%H:%M:%S"),
                    "closingTime": interval.closes.strftime("%H:%M:%S"),
                }
            )
    return result


def accessibility(location: Location) -> list[dict]:
    extensions = []
    for flag, code, text in _ACCESS:
        if getattr(location, flag):
            concept: dict = {"text": text}
            if code is not None:
                concept["coding"] = [{"system": ACCESSIBILITY_CS, "code": code}]
            extensions.append({"url": ACCESSIBILITY, "valueCodeableConcept": concept})
    return extensions


def location_resource(
    location: Location, hours: Sequence[OpeningHours] = (), on: dt.date | None = None
) -> dict:
    """``hours``: the clinic's OpeningHours rows; ``on``: today, for a temporary closure."""
    today = on or timezone.localdate()
    closed = location.reopens_on is not None and today < location.reopens_on
    resource: dict = {
        "resourceType": "Location",
        "id": str(location.pk),
        "meta": _meta("Location", location.updated_at),
        # A temporary closure is FHIR's "suspended"; the day it reopens is said in words.
        "status": "suspended" if closed else "active",
        # Plan-Net wants a name; a clinic without one is called by its street address.
        "name": location.name or location.one_line_address,
        "address": address(location),
    }
    telecom = _phone(location.phone)
    if telecom:
        resource["telecom"] = telecom
    if location.latitude is not None and location.longitude is not None:
        resource["position"] = {"latitude": location.latitude, "longitude": location.longitude}
    if location.name:
        resource["managingOrganization"] = {
            "reference": f"Organization/{location.pk}",
            "display": location.name,
        }
    if hours:
        resource["hoursOfOperation"] = hours_of_operation(hours)
    if closed:
        reopens = location.reopens_on
        resource["availabilityExceptions"] = (
            f"Temporarily closed until {reopens:%B} {reopens.day}, {reopens.year}."
        )
    extensions = accessibility(location)
    if extensions:
        resource["extension"] = extensions
    return resource


def organization_resource(location: Location) -> dict:
    """A named clinic as the practice the name stands for (Plan-Net's "provider group")."""
    resource: dict = {
        "resourceType": "Organization",
        "id": str(location.pk),
        "meta": _meta("Organization", location.updated_at),
        "active": True,
        "type": [
            {"coding": [{"system": ORG_TYPE_CS, "code": "prvgrp", "display": "Provider Group"}]}
        ],
        "name": location.name,
        "address": [address(location)],
    }
    telecom = _phone(location.phone)
    if telecom:
        resource["telecom"] = telecom
    return resource


@cache
def _nucc_code(code_prefix: str) -> str:
    """A taxonomy prefix as its NUCC code: 111N -> 111N00000X (the profession's own code),
    a full 10-character code as itself."""
    if len(code_prefix) == 10:
        return code_prefix
    return code_prefix + "0" * (9 - len(code_prefix)) + "X"


def specialty_codes() -> dict[int, tuple[str, str]]:
    """profession id -> (NUCC code, display), from the editable TaxonomyMapping rows (the
    first prefix of each profession, which the NPI import maps from): one query."""
    codes: dict[int, tuple[str, str]] = {}
    rows = TaxonomyMapping.objects.order_by("code_prefix").values_list(
        "profession_id", "code_prefix", "profession__name"
    )
    for profession_id, prefix, name in rows:
        codes.setdefault(profession_id, (_nucc_code(prefix), name))
    return codes


def _coded(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def delivery_methods(telehealth: bool) -> list[dict]:
    """Plan-Net's delivery-method: every clinic is in person; telehealth adds a virtual one."""
    methods = [
        {
            "url": DELIVERY_METHOD,
            "extension": [
                {
                    "url": "type",
                    "valueCodeableConcept": _coded(DELIVERY_METHOD_CS, "physical", "Physical"),
                }
            ],
        }
    ]
    if telehealth:
        methods.append(
            {
                "url": DELIVERY_METHOD,
                "extension": [
                    {
                        "url": "type",
                        "valueCodeableConcept": _coded(DELIVERY_METHOD_CS, "virtual", "Virtual"),
                    },
                    {
                        "url": "virtualModalities",
                        "valueCodeableConcept": _coded(VIRTUAL_MODALITIES_CS, "video", "Video"),
                    },
                ],
            }
        )
    return methods


# Our four values are Plan-Net's AcceptingPatientsCS, one for one.
_NEW_PATIENTS = {
    NewPatients.ACCEPTING: ("newpt", "Accepting"),
    NewPatients.NOT_ACCEPTING: ("nopt", "Not Accepting"),
    NewPatients.EXISTING_ONLY: ("existptonly", "Accepting existing patients"),
    NewPatients.EXISTING_AND_FAMILY: (
        "existptfam",
        "Accepting existing patients and members of their families",
    ),
}


def new_patients(status: str) -> dict:
    code, display = _NEW_PATIENTS[NewPatients(status)]
    return {
        "url": NEW_PATIENTS,
        "extension": [
            {
                "url": "acceptingPatients",
                "valueCodeableConcept": _coded(ACCEPTING_PATIENTS_CS, code, display),
            }
        ],
    }


def role_resource(location: Location, specialties: dict[int, tuple[str, str]]) -> dict:
    """``location`` with its ``practitioner`` loaded: that practitioner at that clinic."""
    practitioner = location.practitioner
    updated = max(location.updated_at, practitioner.updated_at)
    resource: dict = {
        "resourceType": "PractitionerRole",
        "id": str(location.pk),
        "meta": _meta("PractitionerRole", updated),
        "extension": [
            new_patients(practitioner.new_patients),
            *delivery_methods(practitioner.telehealth),
        ],
        "active": True,
        "practitioner": {
            "reference": f"Practitioner/{practitioner.pk}",
            "display": str(practitioner),
        },
        "location": [{"reference": f"Location/{location.pk}"}],
    }
    if location.name:
        resource["organization"] = {
            "reference": f"Organization/{location.pk}",
            "display": location.name,
        }
    specialty = specialties.get(practitioner.profession_id)
    if specialty is not None:
        resource["specialty"] = [_coded(NUCC_SYSTEM, *specialty)]
    telecom = _phone(location.phone or practitioner.phone)
    if telecom:
        resource["telecom"] = telecom
    return resource


# --- Bundles, outcomes and what the server can do ------------------------------------------------


def bundle(
    *,
    self_url: str,
    next_url: str | None,
    base_url: str,
    matches: Sequence[dict],
    included: Sequence[dict] = (),
    total: int | None = None,
) -> dict:
    result: dict = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base_url}{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": mode},
            }
            for mode, resources in (("match", matches), ("include", included))
            for resource in resources
        ],
    }
    if next_url is not None:
        result["link"].append({"relation": "next", "url": next_url})
    if total is not None:
        result["total"] = total
    if not result["entry"]:
        del result["entry"]
    return result


def operation_outcome(code: str, diagnostics: str) -> dict:
    """``code``: an IssueType (invalid, not-found, not-supported)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


# What each type can be searched by, as the CapabilityStatement names it: (name, FHIR type, doc).
SEARCH_PARAMETERS: dict[str, list[tuple[str, str, str]]] = {
    "Practitioner": [
        ("identifier", "token", "NPI: 1234567893 or http://hl7.org/fhir/sid/us-npi|1234567893"),
        ("name", "string", "Any part of the name, from its start"),
        ("family", "string", "The family name, from its start"),
        ("given", "string", "The given name, from its start"),
        ("qualification-code", "token", "A current certification (slug; a level counts)"),
    ],
    "PractitionerRole": [
        ("practitioner", "reference", "Practitioner/<id>"),
        ("location", "reference", "Location/<id>"),
        ("organization", "reference", "Organization/<id>"),
        ("specialty", "token", "NUCC taxonomy code, e.g. 111N00000X"),
    ],
    "Location": [
        ("address-postalcode", "string", "5-digit ZIP code"),
        ("address-city", "string", "City, from its start"),
        ("address-state", "string", "Two-letter state"),
        ("near", "special", "lat|lon|distance|unit (mi or km): the directory's distance search"),
        ("organization", "reference", "Organization/<id>"),
    ],
    "Organization": [
        ("name", "string", "The clinic's name, from its start"),
        ("address-postalcode", "string", "5-digit ZIP code"),
    ],
}
COMMON_PARAMETERS = [
    ("_id", "token", "One id"),
    ("_lastUpdated", "date", "gt, ge, lt, le or eq a date or instant"),
    ("_count", "number", "Resources per page, 1 to 100"),
]
INCLUDES = {
    "PractitionerRole": [
        "PractitionerRole:practitioner",
        "PractitionerRole:location",
        "PractitionerRole:organization",
    ]
}


def capability_statement(*, base_url: str, date: dt.datetime) -> dict:
    resources = []
    for kind, parameters in SEARCH_PARAMETERS.items():
        entry: dict = {
            "type": kind,
            "profile": PROFILE[kind],
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": kind_of, "documentation": doc}
                for name, kind_of, doc in [*parameters, *COMMON_PARAMETERS]
            ],
        }
        if kind in INCLUDES:
            entry["searchInclude"] = INCLUDES[kind]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(date),
        "publisher": "Practitioner Locator",
        "kind": "instance",
        "software": {"name": "Practitioner Locator"},
        "implementation": {
            "description": "Read-only provider directory (Da Vinci PDex Plan-Net profiles)",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "implementationGuide": [
            f"{PLAN_NET}/ImplementationGuide/hl7.fhir.us.davinci-pdex-plan-net"
        ],
        "rest": [{"mode": "server", "resource": resources}],
    }
