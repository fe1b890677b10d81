"""Small factories for tests: a published practitioner with one clinic, unless told otherwise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import factory
from django.utils import timezone

from practitioners.models import (
    Certification,
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
)
from practitioners.search import geo
from practitioners.search.params import SearchParams, certification_groups


def profession(slug: str = "chiropractor") -> Profession:
    # Seeded by a data migration; a transactional test that ran before may have flushed it.
    return Profession.objects.get_or_create(
        slug=slug, defaults={"name": slug.replace("-", " ").capitalize()}
    )[0]


def certification(slug: str) -> Certification:
    return Certification.objects.get(slug=slug)


class PractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Practitioner

    name = factory.Sequence(lambda n: f"Practitioner {n:04d}")
    credentials = "DC"
    profession = factory.LazyFunction(profession)
    status = Practitioner.Status.PUBLISHED
    slug = factory.Sequence(lambda n: f"practitioner-{n:04d}")
    phone = "(901) 555-0100"


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    practitioner = factory.SubFactory(PractitionerFactory)
    name = "Clinic"
    address_line1 = factory.Sequence(lambda n: f"{100 + n} Poplar Ave")
    city = "Memphis"
    state = "TN"
    postal_code = "38117"
    latitude = 35.1124
    longitude = -89.9034
    precision = Location.Precision.PROVIDED
    geocode_status = Location.GeocodeStatus.OK


def practitioner_at(
    latitude: float,
    longitude: float,
    *,
    certifications: Iterable[str] = (),
    expires_on: dt.date | None = None,
    postal_code: str = "38117",
    **fields,
) -> Practitioner:
    """A practitioner with one clinic at these coordinates holding these certification slugs."""
    practitioner = PractitionerFactory(**fields)
    LocationFactory(
        practitioner=practitioner, latitude=latitude, longitude=longitude, postal_code=postal_code
    )
    for slug in certifications:
        PractitionerCertification.objects.create(
            practitioner=practitioner, certification=certification(slug), expires_on=expires_on
        )
    return practitioner


def practitioner_near_zip(zip_code: str, miles_north: float = 0.0, **kwargs) -> Practitioner:
    """A practitioner ``miles_north`` miles due north of a ZIP centroid."""
    centroid = geo.zip_centroid(zip_code)
    assert centroid is not None
    latitude = centroid.latitude + miles_north / 69.05
    return practitioner_at(latitude, centroid.longitude, postal_code=zip_code, **kwargs)


def search_params(
    origin: geo.Origin | None,
    radius_mi: float = 25,
    certifications: Iterable[str] = (),
    **filters,
) -> SearchParams:
    """A validated search, as the FilterSet would build it: certification slugs are expanded
    to their levels; ``filters`` are the other SearchParams fields (match, telehealth...)."""
    every = list(Certification.objects.all())
    requested = [certification(slug) for slug in certifications]
    return SearchParams(
        on=filters.pop("on", None) or timezone.localdate(),
        origin=origin,
        radius_mi=float(radius_mi),
        certifications=certification_groups(requested, every),
        **filters,
    )
