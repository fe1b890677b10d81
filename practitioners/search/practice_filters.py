"""The practice filters as SQL: languages, insurance, self-pay, sliding scale, new patients and
gender on the practitioner ``p``; wheelchair access and opening hours on the clinic ``l``.

The clinic conditions go into the SQL that picks each practitioner's nearest clinic, so the
clinic a result shows is the nearest one that passes them ("open now" finds the branch that is
open, not the nearest branch of a practice open somewhere). Hours are compared in minutes of
the week in the clinic's own time zone; the zone follows from the clinic's state and ZIP
(``practice.time_zone_case_sql``), so the search computes, for the instant it runs, the local
minute and date in each zone once, and each clinic row picks its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from ..practice import (
    MINUTES_PER_WEEK,
    Language,
    OpeningHours,
    Payer,
    local_minute_of_week,
    time_zone_case_sql,
    time_zone_names,
)
from . import index as search_index
from .index import evening_hours_sql, weekend_hours_sql


@cache
def _zones() -> dict[str, ZoneInfo]:
    """Every zone a clinic can be in, loaded once: ZoneInfo keeps only a few strongly, and
    re-reading the files took ~1.5 ms each time a search built its hours conditions."""
    return {name: ZoneInfo(name) for name in time_zone_names()}


OpenFilter = Literal["evenings", "weekends", "now"]
OPEN_CHOICES: tuple[tuple[str, str], ...] = (
    ("evenings", "Open evenings (after 17:00 on a weekday)"),
    ("weekends", "Open weekends"),
    ("now", "Open now"),
)
HOURS = OpeningHours._meta.db_table
LANGUAGE = Language._meta.db_table
PAYER = Payer._meta.db_table


def _through_table(name: str) -> str:
    from ..models import Practitioner

    return getattr(Practitioner, name).through._meta.db_table


@dataclass(frozen=True, kw_only=True)
class PracticeFilters:
    """The validated practice filters of one search (``SearchParams.practice``)."""

    language_ids: tuple[int, ...] = ()  # any of them
    payer_id: int | None = None
    self_pay: bool = False
    sliding_scale: bool = False
    wheelchair: bool = False
    open: OpenFilter | None = None
    new_patients: str | None = None
    gender: str | None = None
    now: dt.datetime | None = None  # the instant "open now" and closures are judged at
    # No other language / payer shares a bit with the ones asked for: the clinics' bits are
    # then exact for them (the FilterSet, which knows every id, says so).
    languages_by_bits: bool = False
    payer_by_bits: bool = False

    @property
    def on_clinic(self) -> bool:
        return self.wheelchair or self.open is not None

    def _clinic_bits(self) -> int:
        """The ``practice_bits`` of the clinic's own properties these filters need."""
        required = 0
        if self.wheelchair:
            required |= search_index.WHEELCHAIR
        if self.open == "evenings":
            required |= search_index.OPEN_EVENINGS
        elif self.open == "weekends":
            required |= search_index.OPEN_WEEKENDS
        return required

    def clinic_bit_conditions(self, clinic: str) -> list[tuple[str, list]]:
        """The clinic's own properties as a test of its ``practice_bits`` alone: for another
        clinic of the same practitioner, whose practitioner-wide copies are the same."""
        required = self._clinic_bits()
        if not required:
            return []
        return [(f"({clinic}.practice_bits & %s) = %s", [required, required])]

    def index_conditions(self, clinic: str = "l") -> list[tuple[str, list]]:
        """What the clinic's copies (``practice_bits``, ``language_bits``, ``payer_bits``, read
        from the search index) can reject before any look-up. A prefilter: the exact
        conditions below still run on what passes."""
        required = self._clinic_bits()
        if self.self_pay:
            required |= search_index.SELF_PAY
        if self.sliding_scale:
            required |= search_index.SLIDING_SCALE
        conditions: list[tuple[str, list]] = []
        for bit in search_index.RARE_CLINIC_BITS.values():
            if required & bit:
                # Word for word the condition of the bit's partial index, its number written
                # in: neither database uses a partial index for a condition it cannot match.
                conditions.append((f"({clinic}.practice_bits & {bit}) = {bit}", []))
        if required:
            conditions.append((f"({clinic}.practice_bits & %s) = %s", [required, required]))
        if self.language_ids:
            bits = search_index.certification_bits(self.language_ids)
            conditions.append((f"({clinic}.language_bits & %s) <> 0", [bits]))
        if self.payer_id is not None:
            bits = search_index.certification_bit(self.payer_id)
            conditions.append((f"({clinic}.payer_bits & %s) <> 0", [bits]))
        return conditions

    def practitioner_conditions(
        self, owner: str = "p", *, copied: bool = False
    ) -> list[tuple[str, list]]:
        """Conditions on the practitioner row ``owner`` (``p`` in the search's SQL). With
        ``copied``, the clinic's copies were tested already (index_conditions) and settle
        self-pay and sliding scale (exact, as ``listed`` is), and the languages and the payer
        where no other one shares their bits."""
        conditions: list[tuple[str, list]] = []
        if self.language_ids and not (copied and self.languages_by_bits):
            marks = ", ".join(["%s"] * len(self.language_ids))
            conditions.append(
                (
                    f"EXISTS (SELECT 1 FROM {_through_table('languages')} pl "
                    f"WHERE pl.practitioner_id = {owner}.id AND pl.language_id IN ({marks}))",
                    list(self.language_ids),
                )
            )
        if self.payer_id is not None and not (copied and self.payer_by_bits):
            conditions.append(
                (
                    f"EXISTS (SELECT 1 FROM {_through_table('payers')} pp "
                    f"WHERE pp.practitioner_id = {owner}.id AND pp.payer_id = %s)",
                    [self.payer_id],
                )
            )
        if self.self_pay and not copied:
            conditions.append((f"{owner}.self_pay = %s", [True]))
        if self.sliding_scale and not copied:
            conditions.append((f"{owner}.sliding_scale = %s", [True]))
        if self.new_patients is not None:
            conditions.append((f"{owner}.new_patients = %s", [self.new_patients]))
        if self.gender is not None:
            conditions.append((f"{owner}.gender = %s", [self.gender]))
        return conditions

    def clinic_conditions(
        self, connection, clinic: str = "l", *, copied: bool = False
    ) -> list[tuple[str, list]]:
        """Conditions on the clinic row ``clinic`` (``l`` in the search's SQL). With
        ``copied``, its ``practice_bits`` were tested already and settle the entrance and
        the evening and weekend hours; a temporary closure depends on the day and is checked
        here, but only for a clinic whose bits say it has one."""
        conditions: list[tuple[str, list]] = []
        if self.wheelchair and not copied:
            conditions.append((f"{clinic}.wheelchair_entrance = %s", [True]))
        if self.open is None:
            return conditions
        now = self.now or dt.datetime.now(dt.UTC)
        local = {name: now.astimezone(zone) for name, zone in _zones().items()}
        # A temporary closure hides every "open" claim until the day the clinic reopens.
        dates = {name: connection.ops.adapt_datefield_value(t.date()) for name, t in local.items()}

        def reopened(row: str) -> tuple[str, list]:
            today, today_params = time_zone_case_sql(
                dates, state=f"{row}.state", postal_code=f"{row}.postal_code"
            )
            return f"{row}.reopens_on <= {today}", today_params

        if copied:
            # Only the few clinics whose bits say they have a closure date read their row, in
            # a subquery: a condition naming the row's own columns would make every clinic of
            # the circle read its row (the search index alone no longer covers the query).
            sql, sql_params = reopened("closure")
            conditions.append(
                (
                    f"(({clinic}.practice_bits & {search_index.CLOSURE_DATED}) = 0 OR EXISTS ("
                    f"SELECT 1 FROM {search_index.LOCATION} closure "
                    f"WHERE closure.id = {clinic}.id AND {sql}))",
                    sql_params,
                )
            )
        else:
            sql, sql_params = reopened(clinic)
            conditions.append((f"({clinic}.reopens_on IS NULL OR {sql})", sql_params))
        owned = f"h.location_id = {clinic}.id"
        if copied and self.open in ("evenings", "weekends"):
            return conditions
        if self.open == "evenings":
            sql = f"EXISTS (SELECT 1 FROM {HOURS} h WHERE {owned} AND {evening_hours_sql()})"
            conditions.append((sql, []))
        elif self.open == "weekends":
            sql = f"EXISTS (SELECT 1 FROM {HOURS} h WHERE {owned} AND {weekend_hours_sql()})"
            conditions.append((sql, []))
        else:
            minute, minute_params = time_zone_case_sql(
                {name: local_minute_of_week(t) for name, t in local.items()},
                state=f"{clinic}.state",
                postal_code=f"{clinic}.postal_code",
            )
            # Only today's intervals and yesterday's (which may run past midnight) can hold this
            # minute, in any zone: the index on (location, weekday) reads just those.
            days = sorted({d for t in local.values() for d in (t.weekday(), (t.weekday() - 1) % 7)})
            # The interval holds this minute, or it began last week and runs past Sunday
            # midnight into it (its end is then beyond the week's last minute).
            sql = (
                f"EXISTS (SELECT 1 FROM {HOURS} h WHERE {owned} "
                f"AND h.weekday IN ({', '.join(['%s'] * len(days))}) AND "
                f"((h.start_minute <= {minute} AND h.end_minute > {minute}) "
                f"OR h.end_minute > {minute} + {MINUTES_PER_WEEK}))"
            )
            conditions.append((sql, [*days, *minute_params, *minute_params, *minute_params]))
        return conditions
