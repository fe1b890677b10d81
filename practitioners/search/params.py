"""A search as one frozen, typed value: everything ``query.py`` needs, nothing it must look up.

``filters.py`` builds it from a request (validation only); ``query.py`` turns it into SQL. The
certifications arrive already expanded to their levels, with whether the index copies can
decide them alone, so the query never reads the Certification table to plan itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings

from . import geo
from . import index as search_index
from .practice_filters import PracticeFilters

MatchMode = Literal["all", "any"]


@dataclass(frozen=True)
class CertificationGroup:
    """One requested certification: its id and its levels' ids (any of them satisfies it)."""

    slug: str
    name: str
    ids: tuple[int, ...]
    # No certification outside ``ids`` shares their bits: the clinic's copies decide alone.
    exact: bool

    @property
    def bits(self) -> int:
        return search_index.certification_bits(self.ids)


def certification_groups(
    requested: Sequence, every_certification: Iterable
) -> tuple[CertificationGroup, ...]:
    """For each requested Certification, the group that satisfies it: itself and its levels.

    ``every_certification`` is every Certification row (id, parent_id): the levels and the
    shared-bit check come from it without a query."""
    every = list(every_certification)
    every_id = [certification.id for certification in every]
    levels: dict[int, list[int]] = {}
    for certification in every:
        if certification.parent_id is not None:
            levels.setdefault(certification.parent_id, []).append(certification.id)
    groups = []
    for certification in requested:
        ids = (certification.id, *levels.get(certification.id, []))
        groups.append(
            CertificationGroup(
                slug=certification.slug,
                name=certification.name,
                ids=ids,
                exact=not search_index.shares_bits(ids, every_id),
            )
        )
    return tuple(groups)


@dataclass(frozen=True, kw_only=True)
class SearchParams:
    """A validated search. ``origin`` None means "anywhere, by name" (no distance).

    To add a filter: a field here (or in ``PracticeFilters``), its SQL in
    ``query.practitioner_conditions`` (a clinic's in ``query.clinic_conditions``), its form field
    in ``filters.PractitionerFilter`` (docs/search.md walks through it)."""

    on: dt.date  # the day the search runs on: a certificate expiring before it does not count
    origin: geo.Origin | None = None
    radius_mi: float = field(default_factory=lambda: float(settings.SEARCH_DEFAULT_RADIUS_MI))
    certifications: tuple[CertificationGroup, ...] = ()
    match: MatchMode = "all"
    # The techniques listed for the condition searched for, each with its levels: one more
    # requirement, "any of them" (with match=any, any of them or of the ticked ones).
    condition_techniques: tuple[CertificationGroup, ...] = ()
    profession_id: int | None = None
    # The yes/no from before Plan-Net's four values: True is "accepting", False any other.
    accepting_new_patients: bool | None = None
    telehealth: bool | None = None
    name: str = ""  # part of the practitioner's name, any case
    # Only certificates staff verified count (not self-reported or never-checked ones); with no
    # certification asked for, the practitioner must hold at least one verified certificate.
    verified_only: bool = False
    # Languages, payment, access, hours, new-patient status, gender (search/practice_filters.py):
    # conditions on the practitioner and on the clinic a row shows.
    practice: PracticeFilters = field(default_factory=PracticeFilters)

    @property
    def required_groups(self) -> tuple[CertificationGroup, ...]:
        """The groups a practitioner must each satisfy: for "all" every ticked group and one
        group of the condition's techniques; for "any" one group of all their ids together."""
        if self.match == "any":
            return _merged(self.certifications + self.condition_techniques)
        return self.certifications + _merged(self.condition_techniques)


def _merged(groups: tuple[CertificationGroup, ...]) -> tuple[CertificationGroup, ...]:
    """One group satisfied by any id of ``groups`` (no group for none, the same for one)."""
    if len(groups) < 2:
        return groups
    ids = tuple(sorted({i for group in groups for i in group.ids}))
    return (
        CertificationGroup(slug="", name="", ids=ids, exact=all(group.exact for group in groups)),
    )
