"""The one FilterSet: validates every search parameter for the HTML page and the JSON API alike.

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
from django.db import connections
from django.db.models import BigIntegerField, Q, QuerySet, Value
from django.utils import timezone

from .. import conditions
from ..models import Certification, ClinicPasses, Condition, Practitioner, Profession
from ..practice import Gender, Language, NewPatients, Payer
from . import geo
from .practice_filters import OPEN_CHOICES, PracticeFilters

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
            if not resolution.condition.links.exists():
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


def choice_rows() -> tuple[list[Certification], list[Language], list[Payer]]:
    """Every certification, language and payer (id, slug or code, name, parent), in one
    statement: the choices, the validation and the certifications' levels come from them."""
    no_parent = Value(None, output_field=BigIntegerField())
    certifications = Certification.objects.annotate(kind=Value("c")).values_list(
        "kind", "id", "slug", "name", "parent_id"
    )
    languages = Language.objects.annotate(kind=Value("g"), parent=no_parent).values_list(
        "kind", "id", "code", "name", "parent"
    )
    payers = Payer.objects.annotate(kind=Value("y"), parent=no_parent).values_list(
        "kind", "id", "slug", "name", "parent"
    )
    rows = (
        certifications.order_by()
        .union(languages.order_by(), payers.order_by(), all=True)
        .order_by("kind", "name")
    )
    every_certification, every_language, every_payer = [], [], []
    for kind, pk, slug, name, parent_id in rows:
        if kind == "c":
            every_certification.append(
                Certification(id=pk, slug=slug, name=name, parent_id=parent_id)
            )
        elif kind == "g":
            every_language.append(Language(id=pk, code=slug, name=name))
        else:
            every_payer.append(Payer(id=pk, slug=slug, name=name))
    return every_certification, every_language, every_payer


def _yes_only(label: str) -> django_filters.ChoiceFilter:
    """A filter that is on (``true``) or absent: "offers it", never "does not"."""
    return django_filters.ChoiceFilter(
        label=label,
        choices=(("true", "Yes"),),
        method="filter_nothing",
        error_messages={"invalid_choice": "Use true, or leave it out."},
    )


class PractitionerFilter(django_filters.FilterSet):
    zip = django_filters.CharFilter(
        label="ZIP code", method="filter_nothing", max_length=10, strip=True
    )
    near = django_filters.CharFilter(
        label="City, state", method="filter_nothing", max_length=100, strip=True
    )
    lat = django_filters.NumberFilter(
        label="Latitude",
        method="filter_nothing",
        validators=[MinValueValidator(Decimal(-90)), MaxValueValidator(Decimal(90))],
    )
    lon = django_filters.NumberFilter(
        label="Longitude",
        method="filter_nothing",
        validators=[MinValueValidator(Decimal(-180)), MaxValueValidator(Decimal(180))],
    )
    radius = RadiusFilter(
        label="Within (miles)",
        method="filter_nothing",
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
        method="filter_nothing",
        error_messages={"invalid_choice": "Unknown certification %(value)s."},
    )
    match = django_filters.ChoiceFilter(
        label="Match",
        choices=MATCH_CHOICES,
        method="filter_nothing",
        empty_label=None,
        error_messages={"invalid_choice": "Use all or any."},
    )
    profession = django_filters.ModelChoiceFilter(
        label="Profession",
        queryset=Profession.objects.all(),
        to_field_name="slug",
        empty_label="Any profession",
    )
    accepting_new_patients = django_filters.ChoiceFilter(
        label="Accepting new patients",
        choices=BOOLEAN_CHOICES,
        method="filter_accepting",
        error_messages={"invalid_choice": "Use true or false."},
    )
    telehealth = django_filters.ChoiceFilter(
        label="Offers telehealth",
        choices=BOOLEAN_CHOICES,
        method="filter_boolean",
        error_messages={"invalid_choice": "Use true or false."},
    )
    q = django_filters.CharFilter(
        label="Name", field_name="name", lookup_expr="icontains", max_length=100, strip=True
    )
    # The practice filters (docs/filters.md); practice_filters turns them into one value.
    language = django_filters.MultipleChoiceFilter(
        label="Languages",
        choices=[],  # filled per request in __init__: languages are data, not code
        method="filter_nothing",
        error_messages={"invalid_choice": "Unknown language %(value)s (use an ISO 639 code)."},
    )
    insurance = django_filters.ChoiceFilter(
        label="Insurance",
        choices=[],  # filled per request in __init__, by payer slug
        method="filter_nothing",
        empty_label=None,  # the template offers "Any or none"
        error_messages={"invalid_choice": "Unknown insurance %(value)s."},
    )
    self_pay = _yes_only("Self-pay welcome")
    sliding_scale = _yes_only("Sliding-scale fees")
    wheelchair = _yes_only("Wheelchair-accessible entrance")
    open = django_filters.ChoiceFilter(
        label="Open",
        choices=OPEN_CHOICES,
        method="filter_nothing",
        error_messages={"invalid_choice": "Use evenings, weekends or now."},
    )
    new_patients = django_filters.ChoiceFilter(
        label="New patients",
        choices=NewPatients.choices,
        method="filter_nothing",
        error_messages={
            "invalid_choice": "Use accepting, not_accepting, existing_only or existing_and_family."
        },
    )
    gender = django_filters.ChoiceFilter(
        label="Practitioner's gender",
        choices=Gender.choices,
        method="filter_nothing",
        error_messages={"invalid_choice": "Use female or male."},
    )
    condition = django_filters.CharFilter(
        label="What's bothering you?", method="filter_nothing", max_length=100, strip=True
    )

    class Meta:
        model = Practitioner
        fields: list[str] = []
        form = SearchForm

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A dozen rows, read once per search: the choices, the requested certifications and
        # their levels all come from them, instead of a query each.
        self.every_certification, self.every_language, self.every_payer = choice_rows()
        self.filters["certification"].extra["choices"] = certification_choices(
            self.every_certification
        )
        self.filters["language"].extra["choices"] = [(g.code, g.name) for g in self.every_language]
        self.filters["insurance"].extra["choices"] = [(y.slug, y.name) for y in self.every_payer]

    def get_form_class(self) -> type[forms.Form]:
        # django-filter builds a new form class per request; it depends only on the choices.
        choices = tuple(
            tuple(self.filters[name].extra["choices"])
            for name in ("certification", "language", "insurance")
        )
        form_class = _FORM_CLASSES.get(choices)
        if form_class is None:
            if len(_FORM_CLASSES) > 16:  # certifications edited many times: start afresh
                _FORM_CLASSES.clear()
            form_class = _FORM_CLASSES[choices] = super().get_form_class()
        return form_class

    def filter_nothing(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        # Origin, radius and certifications interact, so filter_queryset applies them together.
        return queryset

    def filter_boolean(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(**{name: value == "true"})

    def filter_accepting(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # The yes/no parameter from before the four values: "true" is accepting, "false" any
        # of the other three.
        accepting = Q(new_patients=NewPatients.ACCEPTING)
        return queryset.filter(accepting if value == "true" else ~accepting)

    @cached_property
    def practice_filters(self) -> PracticeFilters:
        """The validated practice filters (call ``is_valid()`` first)."""
        cleaned = self.form.cleaned_data
        language_ids = {g.code: g.id for g in self.every_language}
        payer_ids = {y.slug: y.id for y in self.every_payer}
        return PracticeFilters(
            language_ids=tuple(
                sorted({language_ids[code] for code in cleaned.get("language") or []})
            ),
            payer_id=payer_ids.get(cleaned.get("insurance") or ""),
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

    @property
    def radius_mi(self) -> float:
        radius = self.form.cleaned_data.get("radius")
        if radius == ANY_DISTANCE:
            return geo.ANYWHERE_MI
        return float(radius) if radius is not None else float(settings.SEARCH_DEFAULT_RADIUS_MI)

    @property
    def any_distance(self) -> bool:
        return self.form.cleaned_data.get("radius") == ANY_DISTANCE

    @property
    def match_mode(self) -> str:
        return self.form.cleaned_data.get("match") or "all"

    @cached_property
    def certifications(self) -> list[Certification]:
        slugs = self.form.cleaned_data.get("certification") or []
        by_slug = {cert.slug: cert for cert in self.every_certification}
        return [by_slug[slug] for slug in dict.fromkeys(slugs) if slug in by_slug]

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

    def filter_without_origin(self, queryset: QuerySet) -> QuerySet:
        """Every filter but distance: what "the nearest match is N miles away" searches.

        A condition counts as one more ticked certification, "any of its techniques", under
        the usual rule: with match=all a practitioner needs one of them and every ticked one;
        with match=any, any one of all of them."""
        queryset = super().filter_queryset(queryset)
        every = self.every_certification
        techniques = self.condition_techniques
        if techniques and self.match_mode == "any":
            wanted = list({c.pk: c for c in [*self.certifications, *techniques]}.values())
            return self.filter_practice(queryset.holding(wanted, "any", every_certification=every))
        queryset = queryset.holding(self.certifications, self.match_mode, every_certification=every)
        if techniques:
            queryset = queryset.holding(techniques, "any", every_certification=every)
        queryset = self.filter_practice(queryset)
        return queryset

    def filter_practice(self, queryset: QuerySet) -> QuerySet:
        """The practice filters: on the practitioner's row, and on the clinic the search picks
        (``ClinicPasses``, which the distance search applies to the clinic it shows)."""
        practice = self.practice_filters
        conditions = practice.practitioner_conditions(owner=Practitioner._meta.db_table)
        if conditions:
            queryset = queryset.extra(
                where=[sql for sql, _ in conditions],
                params=[value for _, values in conditions for value in values],
            )
        if practice.on_clinic:
            queryset = queryset.filter(ClinicPasses(practice, connections[queryset.db]))
        return queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = self.filter_without_origin(queryset)
        if self.origin is not None:
            return queryset.near(self.origin, self.radius_mi)
        return queryset.order_by("name", "pk")
