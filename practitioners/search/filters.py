"""The one FilterSet: validates every search parameter for the HTML page and the JSON API alike,
and turns them into one :class:`~.params.SearchParams`. It filters nothing itself:
``query.search_practitioners`` builds the SQL from the params.

Errors are attached to the parameter that caused them, so the page can show them next to the
field and the API can answer 400 with a body keyed by parameter.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property

import django_filters
from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet
from django.utils import timezone

from .. import conditions
from ..models import Certification, Condition, Practitioner
from ..practice import Gender, NewPatients
from . import geo
from . import index as search_index
from .params import SearchParams, certification_groups
from .practice_filters import OPEN_CHOICES, PracticeFilters
from .query import choice_rows

BOOLEAN_CHOICES = (("true", "Yes"), ("false", "No"))
MATCH_CHOICES = (("all", "All of them"), ("any", "Any of them"))
ANY_DISTANCE = "any"


def certification_choices(
    every_certification: list[Certification] | None = None,
) -> list[tuple[str, str]]:
    """Each technique followed by its levels, so the checkboxes read as a tree.

    ``every_certification`` (every row, in the model's default order) saves the query."""
    if every_certification is None:
        every_certification = list(Certification.objects.all())
    name_by_id = {cert.id: cert.name for cert in every_certification}
    rows = [(cert.slug, cert.name, name_by_id.get(cert.parent_id)) for cert in every_certification]
    rows.sort(key=lambda row: (row[2] or row[1], row[2] is not None, row[1]))
    return [(slug, name) for slug, name, _ in rows]


class SearchForm(forms.Form):
    """django-filter builds the fields; this adds the checks that span several of them and
    resolves the origin once, for the FilterSet and the view to share."""

    def clean(self) -> dict:
        cleaned = super().clean()
        self.origin: geo.Origin | None = None
        zip_code = cleaned.get("zip")
        near = cleaned.get("near")
        lat, lon = cleaned.get("lat"), cleaned.get("lon")
        if zip_code:
            try:
                self.origin = geo.origin_from_zip(zip_code)
            except geo.OriginError as error:
                self.add_error("zip", str(error))
        elif near:
            try:
                self.origin = geo.origin_from_place(near)
            except geo.OriginError as error:
                self.add_error("near", str(error))
        elif lat is not None or lon is not None:
            if lat is None:
                self.add_error("lat", "Give a latitude with the longitude.")
            elif lon is None:
                self.add_error("lon", "Give a longitude with the latitude.")
            else:
                self.origin = geo.origin_from_coordinates(float(lat), float(lon))
        self._clean_condition(cleaned.get("condition"))
        return cleaned

    def _clean_condition(self, text: str | None) -> None:
        """A slug, name or synonym is that condition; other free text resolves when it is
        clear, and lists the conditions it could mean (``condition_candidates``) when not."""
        self.condition: Condition | None = None
        self.condition_candidates: list[Condition] = []
        if not text:
            return
        resolution = conditions.resolve(text)
        if resolution.condition is not None:
            if not conditions.technique_ids(resolution.condition):
                self.add_error(
                    "condition", f"No technique is listed for {resolution.condition.name} yet."
                )
                return
            self.condition = resolution.condition
        elif resolution.is_ambiguous:
            self.condition_candidates = resolution.candidates
            self.add_error("condition", f'"{text}" could be several conditions: pick one.')
        else:
            self.add_error(
                "condition",
                f'We do not know a condition called "{text}". Try other words, or pick one '
                "from the list of conditions.",
            )


class RadiusField(forms.DecimalField):
    """Miles, or "any": the nearest matches by distance however far (what the page offers when
    the nearest match lies beyond its largest radius)."""

    def to_python(self, value: object) -> Decimal | str | None:
        if isinstance(value, str) and value.strip().lower() == ANY_DISTANCE:
            return ANY_DISTANCE
        return super().to_python(value)

    def validate(self, value: object) -> None:
        if value != ANY_DISTANCE:
            super().validate(value)

    def run_validators(self, value: object) -> None:
        if value != ANY_DISTANCE:
            super().run_validators(value)


class RadiusFilter(django_filters.NumberFilter):
    field_class = RadiusField


_FORM_CLASSES: dict[tuple, type[forms.Form]] = {}


def _yes_no(label: str) -> django_filters.ChoiceFilter:
    return django_filters.ChoiceFilter(
        label=label,
        choices=BOOLEAN_CHOICES,
        error_messages={"invalid_choice": "Use true or false."},
    )


def _yes_only(label: str) -> django_filters.ChoiceFilter:
    """A filter that is on (``true``) or absent: "offers it", never "does not"."""
    return django_filters.ChoiceFilter(
        label=label,
        choices=(("true", "Yes"),),
        error_messages={"invalid_choice": "Use true, or leave it out."},
    )


class PractitionerFilter(django_filters.FilterSet):
    """The search's parameters. ``params`` (once ``is_valid()``) is the validated search."""

    zip = django_filters.CharFilter(label="ZIP code", max_length=10, strip=True)
    near = django_filters.CharFilter(label="City, state", max_length=100, strip=True)
    lat = django_filters.NumberFilter(
        label="Latitude",
        validators=[MinValueValidator(Decimal(-90)), MaxValueValidator(Decimal(90))],
    )
    lon = django_filters.NumberFilter(
        label="Longitude",
        validators=[MinValueValidator(Decimal(-180)), MaxValueValidator(Decimal(180))],
    )
    radius = RadiusFilter(
        label="Within (miles)",
        validators=[
            MinValueValidator(Decimal(1), "The radius must be at least 1 mile."),
            MaxValueValidator(
                Decimal(settings.SEARCH_MAX_RADIUS_MI),
                f"The radius can be at most {settings.SEARCH_MAX_RADIUS_MI} miles.",
            ),
        ],
    )
    certification = django_filters.MultipleChoiceFilter(
        label="Certifications",
        choices=[],  # filled per request in __init__: certifications are data, not code
        error_messages={"invalid_choice": "Unknown certification %(value)s."},
    )
    match = django_filters.ChoiceFilter(
        label="Match",
        choices=MATCH_CHOICES,
        empty_label=None,
        error_messages={"invalid_choice": "Use all or any."},
    )
    profession = django_filters.ChoiceFilter(
        label="Profession",
        choices=[],  # filled per request in __init__, by slug
        empty_label=None,  # the template offers "Any profession"
    )
    accepting_new_patients = _yes_no("Accepting new patients")
    telehealth = _yes_no("Offers telehealth")
    q = django_filters.CharFilter(label="Name", max_length=100, strip=True)
    verified_only = _yes_no("Verified certifications only")
    condition = django_filters.CharFilter(label="What's bothering you?", max_length=100, strip=True)
    # The practice filters (docs/filters.md): SearchParams.practice.
    language = django_filters.MultipleChoiceFilter(
        label="Languages",
        choices=[],  # filled per request in __init__: languages are data, not code
        error_messages={"invalid_choice": "Unknown language %(value)s (use an ISO 639 code)."},
    )
    insurance = django_filters.ChoiceFilter(
        label="Insurance",
        choices=[],  # filled per request in __init__, by payer slug
        empty_label=None,  # the template offers "Any or none"
        error_messages={"invalid_choice": "Unknown insurance %(value)s."},
    )
    self_pay = _yes_only("Self-pay welcome")
    sliding_scale = _yes_only("Sliding-scale fees")
    wheelchair = _yes_only("Wheelchair-accessible entrance")
    open = django_filters.ChoiceFilter(
        label="Open",
        choices=OPEN_CHOICES,
        error_messages={"invalid_choice": "Use evenings, weekends or now."},
    )
    new_patients = django_filters.ChoiceFilter(
        label="New patients",
        choices=NewPatients.choices,
        error_messages={
            "invalid_choice": "Use accepting, not_accepting, existing_only or existing_and_family."
        },
    )
    gender = django_filters.ChoiceFilter(
        label="Practitioner's gender",
        choices=Gender.choices,
        error_messages={"invalid_choice": "Use female or male."},
    )

    class Meta:
        model = Practitioner
        fields: list[str] = []
        form = SearchForm

    def __init__(self, data=None, *args, **kwargs) -> None:
        super().__init__(data, *args, **kwargs)
        # One statement per search: the choices, the requested certifications and their
        # levels, the languages and the payers all come from these few dozen rows.
        choices = choice_rows()
        self.every_certification = choices.certifications
        self.every_profession = choices.professions
        self.every_language, self.every_payer = choices.languages, choices.payers
        self.filters["certification"].extra["choices"] = certification_choices(
            self.every_certification
        )
        self.filters["profession"].extra["choices"] = [
            (profession.slug, profession.name) for profession in self.every_profession
        ]
        self.filters["language"].extra["choices"] = [(g.code, g.name) for g in self.every_language]
        self.filters["insurance"].extra["choices"] = [(y.slug, y.name) for y in self.every_payer]

    def get_form_class(self) -> type[forms.Form]:
        # django-filter builds a new form class per request; it depends only on the choices.
        choices = tuple(
            tuple(self.filters[name].extra["choices"])
            for name in ("certification", "profession", "language", "insurance")
        )
        form_class = _FORM_CLASSES.get(choices)
        if form_class is None:
            if len(_FORM_CLASSES) > 16:  # certifications edited many times: start afresh
                _FORM_CLASSES.clear()
            form_class = _FORM_CLASSES[choices] = super().get_form_class()
        return form_class

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        raise NotImplementedError(
            "The FilterSet only validates: search with query.search_practitioners(self.params)."
        )

    def _practice(self) -> PracticeFilters:
        """The validated practice filters (call ``is_valid()`` first)."""
        cleaned = self.form.cleaned_data
        language_ids = {g.code: g.id for g in self.every_language}
        payer_ids = {y.slug: y.id for y in self.every_payer}
        languages = tuple(sorted({language_ids[code] for code in cleaned.get("language") or []}))
        payer_id = payer_ids.get(cleaned.get("insurance") or "")
        return PracticeFilters(
            language_ids=languages,
            payer_id=payer_id,
            # The clinics' language and payer bits settle the filter when no other language
            # (payer) shares a bit with the ones asked for, as the certification bits do.
            languages_by_bits=not search_index.shares_bits(languages, language_ids.values()),
            payer_by_bits=payer_id is not None
            and not search_index.shares_bits([payer_id], payer_ids.values()),
            self_pay=cleaned.get("self_pay") == "true",
            sliding_scale=cleaned.get("sliding_scale") == "true",
            wheelchair=cleaned.get("wheelchair") == "true",
            open=cleaned.get("open") or None,
            new_patients=cleaned.get("new_patients") or None,
            gender=cleaned.get("gender") or None,
            now=timezone.now(),
        )

    @property
    def origin(self) -> geo.Origin | None:
        return getattr(self.form, "origin", None)

    @cached_property
    def params(self) -> SearchParams:
        """The validated search (call ``is_valid()`` first)."""
        cleaned = self.form.cleaned_data
        radius = cleaned.get("radius")
        by_slug = {cert.slug: cert for cert in self.every_certification}
        requested = [
            by_slug[slug]
            for slug in dict.fromkeys(cleaned.get("certification") or [])
            if slug in by_slug
        ]
        profession_ids = {profession.slug: profession.id for profession in self.every_profession}
        yes_no = {"true": True, "false": False}
        return SearchParams(
            on=timezone.localdate(),
            origin=self.origin,
            radius_mi=geo.ANYWHERE_MI
            if radius == ANY_DISTANCE
            else float(radius)
            if radius is not None
            else float(settings.SEARCH_DEFAULT_RADIUS_MI),
            certifications=certification_groups(requested, self.every_certification),
            match="any" if cleaned.get("match") == "any" else "all",
            condition_techniques=certification_groups(
                self.condition_techniques, self.every_certification
            ),
            profession_id=profession_ids.get(cleaned.get("profession") or ""),
            accepting_new_patients=yes_no.get(cleaned.get("accepting_new_patients") or ""),
            telehealth=yes_no.get(cleaned.get("telehealth") or ""),
            name=cleaned.get("q") or "",
            verified_only=yes_no.get(cleaned.get("verified_only") or "") is True,
            practice=self._practice(),
        )

    @property
    def searched_condition(self) -> Condition | None:
        """The condition the search is for (the ``condition`` filter resolved), if any."""
        return getattr(self.form, "condition", None)

    @property
    def condition_candidates(self) -> list[Condition]:
        return getattr(self.form, "condition_candidates", [])

    @cached_property
    def condition_techniques(self) -> list[Certification]:
        """The techniques listed for the condition searched for (none without one)."""
        if self.searched_condition is None:
            return []
        return conditions.techniques_for(self.searched_condition, self.every_certification)
