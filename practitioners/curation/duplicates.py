"""Possible duplicates: listings that may be the same practitioner, and staff saying a pair is
two different people. Merging a pair is :mod:`practitioners.curation.merging`."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Concat, Lower, Replace, Right, Trim

from ..models import DuplicateDismissal, Location, Practitioner
from .services import User

# The dashboard's count of pairs (a scan of every listing) is kept a few minutes, and dropped
# whenever staff merge, undo a merge or dismiss a pair.
DUPLICATES_COUNT_KEY = "curation:possible-duplicates-count"
DUPLICATES_COUNT_SECONDS = 300


def forget_duplicates_count() -> None:
    cache.delete(DUPLICATES_COUNT_KEY)


# --- Possible duplicates ----------------------------------------------------------------------

_PHONE_NOISE = (" ", "-", "(", ")", ".", "+", "/")


def phone_key(phone: str) -> str:
    """The last ten digits of a phone number, the same way :func:`_phone_key_expression` does
    it in SQL (so "+1 (901) 555-0100" and "901.555.0100" match)."""
    digits = phone
    for noise in _PHONE_NOISE:
        digits = digits.replace(noise, "")
    return digits[-10:]


def _phone_key_expression():
    expression = F("phone")
    for noise in _PHONE_NOISE:
        expression = Replace(expression, Value(noise), Value(""))
    return Right(expression, 10)


def name_key(name: str) -> str:
    return name.strip().lower()


@dataclass
class DuplicatePair:
    first: Practitioner
    second: Practitioner
    reasons: list[str]


def _duplicate_groups(queryset: QuerySet, key, id_field: str = "pk") -> list[list[int]]:
    """Ids sharing the same non-empty ``key``, one list per key with at least two ids.
    The database groups, so only the rows that really are shared are fetched."""
    keyed = queryset.annotate(dup_key=key).exclude(dup_key="").exclude(dup_key__isnull=True)
    shared = (
        keyed.order_by()
        .values("dup_key")
        .annotate(n=Count(id_field, distinct=True))
        .filter(n__gt=1)
        .values("dup_key")
    )
    groups: dict[str, set[int]] = defaultdict(set)
    for key_value, row_id in keyed.filter(dup_key__in=shared).values_list("dup_key", id_field):
        groups[key_value].add(row_id)
    return [sorted(ids) for ids in groups.values() if len(ids) > 1]


def _dismissed_pairs(ids: Iterable[int]) -> set[tuple[int, int]]:
    ids = list(ids)
    if not ids:
        return set()
    return set(
        DuplicateDismissal.objects.filter(Q(first_id__in=ids) | Q(second_id__in=ids)).values_list(
            "first_id", "second_id"
        )
    )


def find_possible_duplicates(
    *, practitioners: QuerySet[Practitioner] | None = None
) -> list[DuplicatePair]:
    """Pairs of listings that may be the same practitioner: the same name and a clinic in the
    same ZIP, or the same phone, or the same email. Pairs staff dismissed are left out."""
    practitioners = practitioners if practitioners is not None else Practitioner.objects.all()
    reasons: dict[tuple[int, int], list[str]] = defaultdict(list)
    checks = [
        (
            "same name and ZIP",
            Location.objects.filter(practitioner__in=practitioners.values("pk")),
            Concat(Lower(Trim("practitioner__name")), Value("|"), "postal_code"),
            "practitioner_id",
        ),
        ("same phone", practitioners, _phone_key_expression(), "pk"),
        ("same email", practitioners, Lower(Trim("email")), "pk"),
    ]
    for label, queryset, key, id_field in checks:
        for ids in _duplicate_groups(queryset, key, id_field):
            for pair in itertools.combinations(ids, 2):
                if label not in reasons[pair]:
                    reasons[pair].append(label)
    return _pairs(reasons)


def possible_duplicates_of(practitioner: Practitioner) -> list[DuplicatePair]:
    """The possible duplicates of one listing (for its admin page); a few indexed queries."""
    if practitioner.pk is None:
        return []
    candidates: dict[int, list[str]] = defaultdict(list)
    zips = list(practitioner.locations.values_list("postal_code", flat=True))
    if zips:
        for other in (
            Location.objects.filter(postal_code__in=zips)
            .annotate(name_key=Lower(Trim("practitioner__name")))
            .filter(name_key=name_key(practitioner.name))
            .exclude(practitioner_id=practitioner.pk)
            .values_list("practitioner_id", flat=True)
        ):
            candidates[other].append("same name and ZIP")
    if len(phone_key(practitioner.phone)) >= 7:
        for other in (
            Practitioner.objects.annotate(phone_key=_phone_key_expression())
            .filter(phone_key=phone_key(practitioner.phone))
            .exclude(pk=practitioner.pk)
            .values_list("pk", flat=True)
        ):
            candidates[other].append("same phone")
    if practitioner.email.strip():
        for other in (
            Practitioner.objects.filter(email__iexact=practitioner.email.strip())
            .exclude(pk=practitioner.pk)
            .values_list("pk", flat=True)
        ):
            candidates[other].append("same email")
    reasons = {
        tuple(sorted((practitioner.pk, other))): list(dict.fromkeys(labels))
        for other, labels in candidates.items()
    }
    return _pairs(reasons)


def _pairs(reasons: dict[tuple[int, int], list[str]]) -> list[DuplicatePair]:
    ids = {pk for pair in reasons for pk in pair}
    dismissed = _dismissed_pairs(ids)
    kept = {pair: labels for pair, labels in reasons.items() if pair not in dismissed}
    by_id = Practitioner.objects.select_related("profession").in_bulk(
        {pk for pair in kept for pk in pair}
    )
    pairs = [
        DuplicatePair(by_id[first], by_id[second], labels)
        for (first, second), labels in kept.items()
        if first in by_id and second in by_id
    ]
    pairs.sort(key=lambda p: (p.first.name.lower(), p.first.pk, p.second.pk))
    return pairs


@transaction.atomic
def dismiss_duplicate(
    *, first: Practitioner, second: Practitioner, user: User | None = None
) -> DuplicateDismissal:
    """Record that staff looked at these two listings and they are different practitioners."""
    if first.pk == second.pk:
        raise ValueError("A listing cannot be a duplicate of itself.")
    low, high = sorted((first.pk, second.pk))
    # Now, and again once committed: a count computed in between would be stale.
    forget_duplicates_count()
    transaction.on_commit(forget_duplicates_count)
    dismissal, _ = DuplicateDismissal.objects.get_or_create(
        first_id=low,
        second_id=high,
        defaults={"dismissed_by": user if user is not None and user.is_authenticated else None},
    )
    return dismissal
