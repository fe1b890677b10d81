"""The JSON API: the same FilterSet and search as the page, serialised with DRF."""

from __future__ import annotations

import re
from functools import cached_property

from django.conf import settings
from django.core.paginator import InvalidPage
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import conditions
from .models import Location, Practitioner
from .practice import ACCESSIBILITY_FIELDS, PAYMENT_FIELDS, NewPatients
from .search.filters import PractitionerFilter
from .search.query import search_practitioners
from .search.results import CLINIC_FIELDS

MAX_PAGE_SIZE = 100
_PLAIN_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return None if value is None else float(value)


class LocationSerializer(serializers.ModelSerializer):
    temporarily_closed_until = serializers.SerializerMethodField()
    hours_today = serializers.SerializerMethodField()

    def to_representation(self, location: Location) -> dict:
        # What DRF's fields give for these columns (None stays None), without its per-field
        # machinery: a page has up to 100 rows. tests/test_api.py compares the two.
        return {
            **{name: convert(getattr(location, name)) for name, convert in _CLINIC_VALUES},
            **{name: bool(getattr(location, name)) for name in ACCESSIBILITY_FIELDS},
            "temporarily_closed_until": self.get_temporarily_closed_until(location),
            "hours_today": self.get_hours_today(location),
        }

    def get_temporarily_closed_until(self, location: Location) -> str | None:
        hours = getattr(location, "hours_today", None)
        closed = hours.closed_until if hours is not None else None
        return None if closed is None else closed.isoformat()

    def get_hours_today(self, location: Location) -> str | None:
        """ "Open today 8:00-18:00", "Closed today", or None when the clinic lists no hours."""
        hours = getattr(location, "hours_today", None)
        return (hours.text or None) if hours is not None else None

    class Meta:
        model = Location
        # What a result row shows (search/results.py), then what its hours say today.
        fields = [
            *CLINIC_FIELDS,
            *ACCESSIBILITY_FIELDS,
            "temporarily_closed_until",
            "hours_today",
        ]


def _clinic_value(name: str):
    field = Location._meta.get_field(name)
    if field.choices:
        return lambda value: value
    return _number if field.get_internal_type() == "FloatField" else _text


_CLINIC_VALUES = [(name, _clinic_value(name)) for name in CLINIC_FIELDS]


def _as_given(value: object) -> object:
    return value


# Payment as DRF's fields give it: the flags as booleans, the prices as they are (None too).
_PAYMENT_VALUES = [
    (
        name,
        bool
        if Practitioner._meta.get_field(name).get_internal_type() == "BooleanField"
        else _as_given,
    )
    for name in PAYMENT_FIELDS
]


class PractitionerResultSerializer(serializers.ModelSerializer):
    profession = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    certifications = serializers.SerializerMethodField()
    self_reported_certifications = serializers.SerializerMethodField()
    distance_mi = serializers.SerializerMethodField()
    location = LocationSerializer(source="nearest_location", read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()
    npi = serializers.SerializerMethodField()
    languages = serializers.SerializerMethodField()
    insurance = serializers.SerializerMethodField()

    class Meta:
        model = Practitioner
        fields = [
            "id",
            "slug",
            "name",
            "credentials",
            "npi",
            "profession",
            "certifications",
            "self_reported_certifications",
            "accepting_new_patients",
            "new_patients",
            "telehealth",
            "languages",
            "insurance",
            *PAYMENT_FIELDS,
            "distance_mi",
            "location",
            "url",
        ]

    def to_representation(self, practitioner: Practitioner) -> dict:
        # Same keys and values as the declared fields (the schema still comes from them),
        # written out: DRF's generic loop cost more per page than the SQL. Compared with
        # ModelSerializer.to_representation in tests/test_api.py.
        profession = practitioner.profession
        location = practitioner.nearest_location
        return {
            "id": practitioner.id,
            "slug": _text(practitioner.slug),
            "name": _text(practitioner.name),
            "credentials": _text(practitioner.credentials),
            "npi": self.get_npi(practitioner),
            "profession": None if profession is None else profession.slug,
            "certifications": self.get_certifications(practitioner),
            "self_reported_certifications": self.get_self_reported_certifications(practitioner),
            "accepting_new_patients": bool(practitioner.accepting_new_patients),
            "new_patients": practitioner.new_patients,
            "telehealth": bool(practitioner.telehealth),
            "languages": self.get_languages(practitioner),
            "insurance": self.get_insurance(practitioner),
            **{name: convert(getattr(practitioner, name)) for name, convert in _PAYMENT_VALUES},
            "distance_mi": self.get_distance_mi(practitioner),
            "location": None if location is None else self._location.to_representation(location),
            "url": self.get_url(practitioner),
        }

    @cached_property
    def _location(self) -> LocationSerializer:
        return LocationSerializer(context=self.context)

    def get_certifications(self, practitioner: Practitioner) -> list[str]:
        return [
            record.certification.slug for record in practitioner.certificates if record.is_current()
        ]

    def get_self_reported_certifications(self, practitioner: Practitioner) -> list[str]:
        """The current certifications only the practitioner vouches for (staff have not checked
        them yet)."""
        return [
            record.certification.slug
            for record in practitioner.certificates
            if record.is_current() and record.self_reported and record.verified_on is None
        ]

    def get_languages(self, practitioner: Practitioner) -> list[str]:
        """ISO 639 codes of the languages spoken at the practice."""
        return [language.code for language in getattr(practitioner, "language_list", [])]

    def get_insurance(self, practitioner: Practitioner) -> list[str]:
        """Slugs of the payers accepted (the ``insurance`` parameter's values)."""
        return [payer.slug for payer in getattr(practitioner, "payer_list", [])]

    def get_distance_mi(self, practitioner: Practitioner) -> float | None:
        distance = getattr(practitioner, "distance_mi", None)
        return round(distance, 1) if distance is not None else None

    def get_url(self, practitioner: Practitioner) -> str:
        # reverse() and build_absolute_uri() once per response, not once per row: a slug made
        # of slug characters needs no quoting, so it fills the same URL in directly.
        around = self._profile_url_around_slug
        if around is not None and _PLAIN_SLUG.fullmatch(practitioner.slug):
            return f"{around[0]}{practitioner.slug}{around[1]}"
        return self.context["request"].build_absolute_uri(practitioner.get_absolute_url())

    @cached_property
    def _profile_url_around_slug(self) -> tuple[str, str] | None:
        marker = "slug-marker"
        url = self.context["request"].build_absolute_uri(
            reverse("practitioners:profile", kwargs={"slug": marker})
        )
        before, found, after = url.rpartition(marker)
        return (before, after) if found and marker not in before else None

    def get_npi(self, practitioner: Practitioner) -> str | None:
        return practitioner.npi or None


class OriginSerializer(serializers.Serializer):
    zip = serializers.CharField(allow_null=True)
    city = serializers.CharField(allow_null=True)
    state = serializers.CharField(allow_null=True)
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()


class SearchResponseSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    count_is_capped = serializers.BooleanField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    origin = OriginSerializer(allow_null=True)
    nearest_match_distance_mi = serializers.FloatField(allow_null=True)
    results = PractitionerResultSerializer(many=True)


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw in (None, ""):
        return settings.SEARCH_PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"Enter a whole number from 1 to {MAX_PAGE_SIZE}."]})
    return int(raw)


class PractitionerList(APIView):
    """Published practitioners matching the search, nearest first when an origin is given."""

    @extend_schema(
        parameters=[
            OpenApiParameter("zip", str, description="5-digit ZIP or ZIP+4, e.g. 38117"),
            OpenApiParameter("lat", float, description="Latitude of the origin (with lon)"),
            OpenApiParameter("lon", float, description="Longitude of the origin (with lat)"),
            OpenApiParameter("near", str, description='"City, ST", e.g. "Memphis, TN"'),
            OpenApiParameter(
                "radius", str, description='Miles, 1 to 500 (default 25), or "any": nearest first'
            ),
            OpenApiParameter(
                "certification", str, many=True, description="Certification slug, repeatable"
            ),
            OpenApiParameter("match", str, enum=["all", "any"], description="Default all"),
            OpenApiParameter("profession", str, description="Profession slug"),
            OpenApiParameter(
                "accepting_new_patients",
                str,
                enum=["true", "false"],
                description="The older yes/no: true is new_patients=accepting",
            ),
            OpenApiParameter("telehealth", str, enum=["true", "false"]),
            OpenApiParameter("q", str, description="Part of the practitioner's name"),
            # The practice filters (docs/filters.md); combined with the others by AND.
            OpenApiParameter(
                "language",
                str,
                many=True,
                description="ISO 639 code (es, cmn, ase...), repeatable: speaks any of them",
            ),
            OpenApiParameter("insurance", str, description="Payer slug, e.g. medicare"),
            OpenApiParameter("self_pay", str, enum=["true"], description="Self-pay welcome"),
            OpenApiParameter("sliding_scale", str, enum=["true"], description="Sliding-scale fees"),
            OpenApiParameter(
                "wheelchair",
                str,
                enum=["true"],
                description="The clinic shown has a wheelchair-accessible entrance",
            ),
            OpenApiParameter(
                "open",
                str,
                enum=["evenings", "weekends", "now"],
                description="The clinic shown is open after 17:00 on a weekday, on a weekend, "
                "or now in its own time zone (never while temporarily closed)",
            ),
            OpenApiParameter("new_patients", str, enum=[value for value, _ in NewPatients.choices]),
            OpenApiParameter("gender", str, enum=["female", "male"], description="As in NPPES"),
            OpenApiParameter(
                "verified_only",
                str,
                enum=["true", "false"],
                description="Only certificates staff verified count (not self-reported ones)",
            ),
            OpenApiParameter(
                "condition",
                str,
                description="Condition slug (see /api/conditions/), or its name or a synonym: "
                "practitioners holding any technique listed for it, combined with the ticked "
                "certifications by the match rule",
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 100 (default 20)"),
        ],
        responses={200: SearchResponseSerializer},
    )
    def get(self, request: Request) -> Response:
        filterset = PractitionerFilter(request.query_params)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page_size = _page_size(request)
        page_number = request.query_params.get("page") or 1
        try:
            results = search_practitioners(
                filterset.params, page=page_number, per_page=page_size, strict=True
            )
        except InvalidPage as error:
            raise NotFound({"page": [str(error)]}) from error
        page = results.page
        origin = results.origin
        return Response(
            {
                "count": results.paginator.count
                if not results.paginator.count_is_capped
                else results.paginator.cap,
                "count_is_capped": results.paginator.count_is_capped,
                "next": self._page_link(request, page.next_page_number())
                if page.has_next()
                else None,
                "previous": self._page_link(request, page.previous_page_number())
                if page.has_previous()
                else None,
                "origin": None
                if origin is None
                else {
                    "zip": origin.zip,
                    "city": origin.city,
                    "state": origin.state,
                    "latitude": origin.latitude,
                    "longitude": origin.longitude,
                },
                "nearest_match_distance_mi": None
                if results.nearest_distance_mi is None
                else round(results.nearest_distance_mi, 1),
                "results": PractitionerResultSerializer(
                    page.object_list, many=True, context={"request": request}
                ).data,
            }
        )

    def _page_link(self, request: Request, number: int) -> str:
        params = request.query_params.copy()
        params["page"] = str(number)
        return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


class ConditionSuggestionSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    matched = serializers.CharField(help_text="The name or synonym that matched what was typed")
    url = serializers.URLField(help_text="The condition's page")


class ConditionSuggestionsSerializer(serializers.Serializer):
    results = ConditionSuggestionSerializer(many=True)


class ConditionSuggestions(APIView):
    """Conditions matching what someone is typing: by name and synonym, forgiving typos and
    word order ("pirformis", "elbow tennis"), best first. The search's ``condition`` takes any
    of these slugs."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q", str, description="What was typed (2 to 100 characters)", required=True
            )
        ],
        responses={200: ConditionSuggestionsSerializer},
    )
    def get(self, request: Request) -> Response:
        text = (request.query_params.get("q") or "").strip()
        if len(text) > 100:
            raise ValidationError({"q": ["Type at most 100 characters."]})
        suggestions = conditions.suggest(text) if len(text) >= 2 else []
        return Response(
            {
                "results": [
                    {
                        "slug": suggestion.slug,
                        "name": suggestion.name,
                        "matched": suggestion.matched,
                        "url": request.build_absolute_uri(
                            reverse("practitioners:condition", args=[suggestion.slug])
                        ),
                    }
                    for suggestion in suggestions
                ]
            }
        )
