"""What a patient asks of a practice besides distance: languages, payment, access, hours,
new-patient status.

The reference lists (languages, payers) and a clinic's weekly hours live here; the fields on
Practitioner and Location that use them are declared in ``models.py``. The clinic's time zone is
not stored: it follows from its state (and ZIP where a state spans zones), here in Python for
the pages and as SQL (``time_zone_case_sql``) for the search, from the same table, so it can
never disagree with the address.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models, transaction

if TYPE_CHECKING:  # models.py imports this module: the names are for the type hints only
    from django.contrib.auth.models import AbstractBaseUser

    from .models import Location, Practitioner

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
EVENING_STARTS = dt.time(17, 0)  # "open in the evening": open after this on a weekday


class NewPatients(models.TextChoices):
    """HL7 Da Vinci Plan-Net's ``newpatients`` values."""

    ACCEPTING = "accepting", "Accepting new patients"
    NOT_ACCEPTING = "not_accepting", "Not accepting new patients"
    EXISTING_ONLY = "existing_only", "Existing patients only"
    EXISTING_AND_FAMILY = "existing_and_family", "Existing patients and their families"


class Gender(models.TextChoices):
    """As the NPI registry records it (``Provider Gender Code``); a filter, never a badge."""

    FEMALE = "female", "Female"
    MALE = "male", "Male"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class Language(models.Model):
    """A language spoken at a practice, by its ISO 639 code (639-1 where there is one, 639-3
    otherwise: ``ase`` is American Sign Language)."""

    code = models.CharField(max_length=3, unique=True, help_text="ISO 639 code, e.g. es, ase.")
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Payer(models.Model):
    """An insurance plan or payer, curated by staff; practitioners list the ones they accept."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def minutes_of_week(weekday: int, opens: dt.time, closes: dt.time) -> tuple[int, int]:
    """An interval as minutes since Monday 00:00 in the clinic's time zone. One that closes at
    or before it opens runs past midnight (22:00-02:00), so its end lies in the next day and,
    on Sunday, past the end of the week; ``00:00-00:00`` is the whole day."""
    start = weekday * MINUTES_PER_DAY + opens.hour * 60 + opens.minute
    end = weekday * MINUTES_PER_DAY + closes.hour * 60 + closes.minute
    if end <= start:
        end += MINUTES_PER_DAY
    return start, end


class OpeningHours(models.Model):
    """One interval of a clinic's weekly schedule, in the clinic's own time zone; a day may
    have several (8:00-12:00 and 13:00-18:00)."""

    location = models.ForeignKey(
        "practitioners.Location", on_delete=models.CASCADE, related_name="opening_hours"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField(help_text="At or before the opening time: open past midnight.")
    # The interval in minutes of the week, what "open now" compares (set on every save, and by
    # the importers through ``minutes_of_week``).
    start_minute = models.PositiveIntegerField(editable=False, default=0)
    end_minute = models.PositiveIntegerField(editable=False, default=0)

    class Meta:
        ordering = ["location", "weekday", "opens"]
        verbose_name = "opening hours"
        verbose_name_plural = "opening hours"
        indexes = [
            models.Index(
                fields=["location", "weekday", "start_minute", "end_minute"],
                name="opening_hours_search",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {format_time(self.opens)}-{format_time(self.closes)}"

    def save(self, *args, **kwargs) -> None:
        self.start_minute, self.end_minute = minutes_of_week(self.weekday, self.opens, self.closes)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "start_minute", "end_minute"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.opens is not None and self.opens == self.closes and self.opens != dt.time(0):
            raise ValidationError(
                {"closes": "Closing time equals opening time; for a whole day use 0:00-0:00."}
            )


def format_time(value: dt.time) -> str:
    """8:00, 13:30: how US directories print a 24-hour time without a leading zero."""
    return f"{value.hour}:{value.minute:02d}"


# --- The clinic's time zone -------------------------------------------------------------------

DEFAULT_TIME_ZONE = "America/Chicago"
_STATE_ZONES: dict[str, str] = {}
for _zone, _states in {
    "America/New_York": "CT DE DC FL GA IN KY ME MD MA MI NH NJ NY NC OH PA RI SC VT VA WV",
    "America/Chicago": "AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI",
    "America/Denver": "CO ID MT NM UT WY",
    "America/Phoenix": "AZ",
    "America/Los_Angeles": "CA NV OR WA",
    "America/Anchorage": "AK",
    "Pacific/Honolulu": "HI",
    "America/Puerto_Rico": "PR VI",
    "Pacific/Guam": "GU MP",
    "Pacific/Pago_Pago": "AS",
}.items():
    for _state in _states.split():
        _STATE_ZONES[_state] = _zone

# States that span two zones: the ZIP prefixes (first three digits) on the other side of the
# line from the state's default above.
_ZIP3_ZONES: dict[str, str] = {}
for _zone, _prefixes in {
    # East Tennessee (Chattanooga, Johnson City, Knoxville).
    "America/New_York": "373 374 376 377 378 379",
    # The Florida panhandle, Indiana's Gary and Evansville corners, western Kentucky.
    "America/Chicago": "324 325 463 464 476 477 420 421 422 423 424",
    # West Texas (El Paso), the Nebraska panhandle, western South and North Dakota, eastern
    # Oregon.
    "America/Denver": "798 799 885 693 577 586 979",
    # The Idaho panhandle.
    "America/Los_Angeles": "838",
}.items():
    for _prefix in _prefixes.split():
        _ZIP3_ZONES[_prefix] = _zone


def clinic_time_zone_name(state: str, postal_code: str) -> str:
    return _ZIP3_ZONES.get(postal_code[:3]) or _STATE_ZONES.get(state, DEFAULT_TIME_ZONE)


def clinic_time_zone(state: str, postal_code: str) -> ZoneInfo:
    return ZoneInfo(clinic_time_zone_name(state, postal_code))


def time_zone_names() -> list[str]:
    return sorted({*_STATE_ZONES.values(), *_ZIP3_ZONES.values(), DEFAULT_TIME_ZONE})


def _codes_by_zone(table: dict[str, str], code_pattern: str) -> dict[str, str]:
    """Each zone's codes in ``table`` as an SQL list (``'373', '374'``). They are written into
    the SQL as literals, so a code that is not ``code_pattern`` stops the import."""
    codes: dict[str, list[str]] = {}
    for code, zone in table.items():
        if not re.fullmatch(code_pattern, code):
            raise ValueError(f"the time-zone table holds {code!r}, not a ZIP prefix or a state")
        codes.setdefault(zone, []).append(f"'{code}'")
    return {zone: ", ".join(listed) for zone, listed in codes.items()}


# The CASE's branches, in order: the table is constant, so it is grouped once.
_PREFIXES_BY_ZONE = _codes_by_zone(_ZIP3_ZONES, r"[0-9]{3}")
_STATES_BY_ZONE = _codes_by_zone(_STATE_ZONES, r"[A-Z]{2}")
_CASE_ZONES = (*_PREFIXES_BY_ZONE, *_STATES_BY_ZONE, DEFAULT_TIME_ZONE)


def time_zone_case_sql(
    value_by_zone: dict[str, object], *, state: str, postal_code: str
) -> tuple[str, list]:
    """``CASE`` choosing, for a clinic row, ``value_by_zone[its zone]``: the same table as
    :func:`clinic_time_zone_name`, as SQL (ZIP prefixes first, then states).

    The table's ZIP prefixes and state codes are written into the SQL (our own constants,
    checked by ``_codes_by_zone``), so only the values are parameters: the search names this
    CASE up to six times, and PostgreSQL's client-side binding quoted ~90 constants for each."""
    branches = [
        f"WHEN SUBSTR({postal_code}, 1, 3) IN ({codes}) THEN %s"
        for codes in _PREFIXES_BY_ZONE.values()
    ]
    branches += [f"WHEN {state} IN ({codes}) THEN %s" for codes in _STATES_BY_ZONE.values()]
    sql = f"CASE {' '.join(branches)} ELSE %s END"
    return sql, [value_by_zone[zone] for zone in _CASE_ZONES]


def local_minute_of_week(moment: dt.datetime) -> int:
    return moment.weekday() * MINUTES_PER_DAY + moment.hour * 60 + moment.minute


# --- What a clinic's hours say today ------------------------------------------------------------


@dataclass(frozen=True)
class TodaysHours:
    """What a result row or profile says about a clinic's hours at one moment."""

    closed_until: dt.date | None  # temporarily closed: the day it opens again
    intervals: tuple[tuple[dt.time, dt.time], ...]  # today's, in the clinic's time zone
    has_hours: bool

    @property
    def text(self) -> str:
        if self.closed_until is not None:
            return f"Temporarily closed until {self.closed_until:%B} {self.closed_until.day}"
        if not self.has_hours:
            return ""
        if not self.intervals:
            return "Closed today"
        spans = ", ".join(f"{format_time(a)}-{format_time(b)}" for a, b in self.intervals)
        return f"Open today {spans}"


def todays_hours(location, hours: Sequence[OpeningHours], now: dt.datetime) -> TodaysHours:
    """``location``'s hours on the clinic's own today (a closure whose reopening day has come
    is over)."""
    local = now.astimezone(clinic_time_zone(location.state, location.postal_code))
    reopens = location.reopens_on
    if reopens is not None and local.date() < reopens:
        return TodaysHours(closed_until=reopens, intervals=(), has_hours=bool(hours))
    today = tuple(
        (interval.opens, interval.closes)
        for interval in sorted(hours, key=lambda h: h.opens)
        if interval.weekday == local.weekday()
    )
    return TodaysHours(closed_until=None, intervals=today, has_hours=bool(hours))


def is_open_at(location, hours: Iterable[OpeningHours], now: dt.datetime) -> bool:
    """The rule "open now" searches by, in Python (the tests hold the SQL to it)."""
    local = now.astimezone(clinic_time_zone(location.state, location.postal_code))
    if location.reopens_on is not None and local.date() < location.reopens_on:
        return False
    minute = local_minute_of_week(local)
    for interval in hours:
        start, end = minutes_of_week(interval.weekday, interval.opens, interval.closes)
        if start <= minute < end or minute + MINUTES_PER_WEEK < end:
            return True
    return False


def weekly_schedule(hours: Sequence[OpeningHours]) -> list[tuple[str, str]]:
    """(day, "8:00-12:00, 13:00-18:00" or "Closed") for Monday to Sunday."""
    rows = []
    for day in Weekday:
        spans = [
            f"{format_time(h.opens)}-{format_time(h.closes)}"
            for h in sorted(hours, key=lambda h: h.opens)
            if h.weekday == day.value
        ]
        rows.append((day.label, ", ".join(spans) or "Closed"))
    return rows


def price_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None and low != high:
        return f"${low}-${high}"
    if low is not None or high is not None:
        return f"${low if low is not None else high}"
    return ""


# --- The fields, mixed into Practitioner and Location (models.py) ------------------------------


class PracticeDetails(models.Model):
    """What a practice offers: new-patient status, languages, payment, and when each was last
    confirmed (by staff, an import or the practitioner)."""

    new_patients = models.CharField(
        "new patients",
        max_length=20,
        choices=NewPatients.choices,
        default=NewPatients.ACCEPTING,
    )
    new_patients_checked_on = models.DateField(
        "new-patient status confirmed", null=True, blank=True
    )
    gender = models.CharField(
        max_length=6,
        choices=Gender.choices,
        blank=True,
        help_text="As the NPI registry records it; offered as a search filter, never shown.",
    )
    languages = models.ManyToManyField(Language, blank=True, related_name="practitioners")
    languages_checked_on = models.DateField("languages confirmed", null=True, blank=True)
    payers = models.ManyToManyField(
        Payer, blank=True, related_name="practitioners", verbose_name="insurance accepted"
    )
    self_pay = models.BooleanField("self-pay welcome", default=False)
    self_pay_min = models.PositiveIntegerField(
        "first visit from ($)", null=True, blank=True, help_text="Typical self-pay first visit."
    )
    self_pay_max = models.PositiveIntegerField("first visit up to ($)", null=True, blank=True)
    sliding_scale = models.BooleanField("sliding-scale fees", default=False)
    hsa_fsa = models.BooleanField("HSA/FSA cards accepted", default=False)
    payment_checked_on = models.DateField("payment confirmed", null=True, blank=True)

    class Meta:
        abstract = True

    # The yes/no the directory had before the four values: kept for callers that still speak it
    # (the public submission form, older CSV files, the ``accepting_new_patients`` parameter).
    @property
    def accepting_new_patients(self) -> bool:
        return self.new_patients == NewPatients.ACCEPTING

    @accepting_new_patients.setter
    def accepting_new_patients(self, accepting: bool) -> None:
        self.new_patients = NewPatients.ACCEPTING if accepting else NewPatients.NOT_ACCEPTING

    def clean(self) -> None:
        super().clean()
        low, high = self.self_pay_min, self.self_pay_max
        if low is not None and high is not None and low > high:
            raise ValidationError({"self_pay_max": "The upper price is below the lower one."})

    @property
    def self_pay_price(self) -> str:
        return price_range(self.self_pay_min, self.self_pay_max)


class ClinicAccess(models.Model):
    """A clinic's accessibility, a temporary closure, and when they and its hours were last
    confirmed. Its weekly schedule is :class:`OpeningHours`."""

    wheelchair_entrance = models.BooleanField("wheelchair-accessible entrance", default=False)
    accessible_restroom = models.BooleanField(default=False)
    parking = models.BooleanField("parking on site", default=False)
    public_transit = models.BooleanField("near public transit", default=False)
    accessibility_checked_on = models.DateField("accessibility confirmed", null=True, blank=True)
    reopens_on = models.DateField(
        "temporarily closed until",
        null=True,
        blank=True,
        help_text="The day the clinic opens again; until then it shows as temporarily closed.",
    )
    hours_checked_on = models.DateField("hours confirmed", null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def time_zone(self) -> ZoneInfo:
        return clinic_time_zone(self.state, self.postal_code)

    def accessibility_labels(self) -> list[str]:
        return [
            label
            for flag, label in (
                (self.wheelchair_entrance, "Wheelchair-accessible entrance"),
                (self.accessible_restroom, "Accessible restroom"),
                (self.parking, "Parking on site"),
                (self.public_transit, "Near public transit"),
            )
            if flag
        ]


# --- The fields, declared once for the admin, the CSV import, result rows and the API ---------

# Payment (PracticeDetails), in the order every form, column list and API row shows them.
PAYMENT_FIELDS = ("self_pay", "self_pay_min", "self_pay_max", "sliding_scale", "hsa_fsa")
# A clinic's accessibility (ClinicAccess), in the same order everywhere.
ACCESSIBILITY_FIELDS = ("wheelchair_entrance", "accessible_restroom", "parking", "public_transit")
# Everything of PracticeDetails staff edit, in the admin's (and the CSV's) order.
PRACTICE_FIELDS = (
    "new_patients",
    "new_patients_checked_on",
    "languages",
    "languages_checked_on",
    "payers",
    *PAYMENT_FIELDS,
    "payment_checked_on",
    "gender",
)
# A clinic's closure and "confirmed" dates beside its accessibility (ClinicAccess).
CLINIC_DATE_FIELDS = ("accessibility_checked_on", "reopens_on", "hours_checked_on")

# The groups that each have a "last checked" date: what is confirmed together, the fields of
# the group (``opening_hours`` is the clinic's OpeningHours rows) and the date field.
PRACTITIONER_GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "new patients": (("new_patients",), "new_patients_checked_on"),
    "languages": (("languages",), "languages_checked_on"),
    "payment": (("payers", *PAYMENT_FIELDS), "payment_checked_on"),
}
CLINIC_GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "accessibility": (ACCESSIBILITY_FIELDS, "accessibility_checked_on"),
    # A temporary closure is part of what the hours say.
    "hours": (("opening_hours", "reopens_on"), "hours_checked_on"),
}
MAX_INTERVALS = 50  # a week of intervals: more is a mistake (or abuse), never a real schedule


class PracticeRefused(ValueError):
    """A practice detail that cannot be saved, with the message a person can act on."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


def date_changed_groups(
    instance: Practitioner | Location, *, changed: Iterable[str], on: dt.date
) -> list[str]:
    """Date today (``on``) each group of ``instance`` (a Practitioner or a Location) one of whose
    fields is in ``changed``, unless its date is in ``changed`` too (whoever changed it typed
    the date they mean). The admin's rule: staff who change a detail have checked it. Returns
    the date fields set."""
    changed = set(changed)
    groups = PRACTITIONER_GROUPS if hasattr(instance, "payment_checked_on") else CLINIC_GROUPS
    dated = []
    for fields, date_field in groups.values():
        if changed & set(fields) and date_field not in changed:
            setattr(instance, date_field, on)
            dated.append(date_field)
    return dated


def _note_history(
    instance: Practitioner | Location,
    *,
    user: AbstractBaseUser | None,
    author: str,
    edited: Sequence[str],
    confirmed: Sequence[str],
) -> None:
    """What the listing's history says about this save (django-simple-history reads these two
    attributes; the reason column holds 100 characters)."""
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user
    if author:
        said = f"edited {', '.join(edited)}" if edited else f"confirmed {', '.join(confirmed)}"
        instance._change_reason = f"{author}: {said}"[:100]


def check_payment(payment: dict[str, object]) -> None:
    low, high = payment.get("self_pay_min"), payment.get("self_pay_max")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise PracticeRefused(
            "The upper first-visit price is below the lower one.", field="self_pay_max"
        )


def check_hours(
    hours: Sequence[tuple[int, dt.time, dt.time]],
) -> list[tuple[int, dt.time, dt.time]]:
    """The schedule as sorted, distinct (weekday, opens, closes), or :class:`PracticeRefused`."""
    if len(hours) > MAX_INTERVALS:
        raise PracticeRefused(f"At most {MAX_INTERVALS} opening intervals a week.")
    for weekday, opens, closes in hours:
        if weekday not in Weekday.values:
            raise PracticeRefused("Choose a day from Monday to Sunday.")
        if opens == closes and opens != dt.time(0):
            raise PracticeRefused(
                f"{Weekday(weekday).label} {format_time(opens)}-{format_time(closes)} opens and "
                "closes at the same time; for a whole day use 0:00-0:00."
            )
    return sorted(set(hours))


def save_practice_details(
    *,
    practitioner: Practitioner,
    on: dt.date,
    new_patients: str | None = None,
    languages: Iterable[Language] | None = None,
    payers: Iterable[Payer] | None = None,
    payment: dict[str, object] | None = None,
    user: AbstractBaseUser | None = None,
    author: str = "",
) -> list[str]:
    """Write the groups given (None leaves a group as it is) and date each of them ``on``: the
    person saving them has checked them, changed or not. ``author`` and ``user`` go into the
    listing's history. Returns the groups that changed."""
    given = {
        "new patients": new_patients is not None,
        "languages": languages is not None,
        "payment": payers is not None or payment is not None,
    }
    if new_patients is not None and new_patients not in NewPatients.values:
        raise PracticeRefused("Choose one of the new-patient statuses.", field="new_patients")
    if payment is not None:
        unknown = set(payment) - set(PAYMENT_FIELDS)
        if unknown:
            raise PracticeRefused(f"Not payment fields: {', '.join(sorted(unknown))}.")
        check_payment({**{f: getattr(practitioner, f) for f in PAYMENT_FIELDS}, **payment})
    with transaction.atomic():
        changed: list[str] = []
        update_fields: list[str] = []
        if new_patients is not None and practitioner.new_patients != new_patients:
            practitioner.new_patients = new_patients
            changed.append("new patients")
            update_fields.append("new_patients")
        if payment is not None:
            fields = [f for f, value in payment.items() if getattr(practitioner, f) != value]
            for name in fields:
                setattr(practitioner, name, payment[name])
            update_fields += fields
            if fields:
                changed.append("payment")
        for group, relation, chosen in (
            ("languages", practitioner.languages, languages),
            ("payment", practitioner.payers, payers),
        ):
            if chosen is None:
                continue
            wanted = {item.pk for item in chosen}
            if set(relation.values_list("pk", flat=True)) != wanted:
                relation.set(wanted)
                if group not in changed:
                    changed.append(group)
        changed.sort(key=list(PRACTITIONER_GROUPS).index)  # the order the page shows them
        groups = [group for group, present in given.items() if present]
        for group in groups:
            date_field = PRACTITIONER_GROUPS[group][1]
            setattr(practitioner, date_field, on)
            update_fields.append(date_field)
        if not groups:
            return []
        _note_history(practitioner, user=user, author=author, edited=changed, confirmed=groups)
        practitioner.save(update_fields=[*update_fields, "updated_at"])
    return changed


def save_clinic_practice(
    *,
    location: Location,
    on: dt.date | None,
    accessibility: dict[str, bool] | None = None,
    hours: Sequence[tuple[int, dt.time, dt.time]] | None = None,
    reopens_on: dt.date | None = None,
    user: AbstractBaseUser | None = None,
    author: str = "",
) -> list[str]:
    """A clinic's accessibility and its hours: the weekly schedule (``hours`` replaces it
    whole) with the temporary closure (``reopens_on``, None: open). Each group given is dated
    ``on`` (None only where staff cleared the date); returns the groups that changed."""
    if accessibility is not None and set(accessibility) - set(ACCESSIBILITY_FIELDS):
        unknown = sorted(set(accessibility) - set(ACCESSIBILITY_FIELDS))
        raise PracticeRefused(f"Not accessibility fields: {', '.join(unknown)}.")
    schedule = check_hours(hours) if hours is not None else None
    with transaction.atomic():
        changed: list[str] = []
        update_fields: list[str] = []
        groups: list[str] = []
        if accessibility is not None:
            groups.append("accessibility")
            fields = [f for f, value in accessibility.items() if getattr(location, f) != value]
            for name in fields:
                setattr(location, name, accessibility[name])
            update_fields += fields
            if fields:
                changed.append("accessibility")
        if schedule is not None:
            groups.append("hours")
            current = sorted(
                location.opening_hours.values_list("weekday", "opens", "closes").order_by()
            )
            if current != schedule or location.reopens_on != reopens_on:
                changed.append("hours")
            if current != schedule:
                OpeningHours.objects.filter(location_id=location.pk).delete()
                OpeningHours.objects.bulk_create([interval(location.pk, *row) for row in schedule])
            if location.reopens_on != reopens_on:
                location.reopens_on = reopens_on
                update_fields.append("reopens_on")
        if not groups:
            return []
        for group in groups:
            date_field = CLINIC_GROUPS[group][1]
            setattr(location, date_field, on)
            update_fields.append(date_field)
        _note_history(location, user=user, author=author, edited=changed, confirmed=groups)
        location.save(update_fields=[*update_fields, "updated_at"])
    return changed


def confirm_practice(
    *,
    instance: Practitioner | Location,
    groups: Iterable[str],
    on: dt.date,
    user: AbstractBaseUser | None = None,
    author: str = "",
) -> list[str]:
    """ "These are still right": date ``groups`` of a Practitioner or a Location ``on``
    without changing anything else. Returns the date fields set."""
    known = PRACTITIONER_GROUPS if hasattr(instance, "payment_checked_on") else CLINIC_GROUPS
    groups = list(groups)
    unknown = [group for group in groups if group not in known]
    if unknown or not groups:
        raise PracticeRefused(f"Nothing to confirm by the name {', '.join(unknown) or '-'}.")
    with transaction.atomic():
        dated = [known[group][1] for group in groups]
        for date_field in dated:
            setattr(instance, date_field, on)
        _note_history(instance, user=user, author=author, edited=(), confirmed=groups)
        instance.save(update_fields=[*dated, "updated_at"])
    return dated


# --- A page's details in one query ------------------------------------------------------------


def attach_practice_details(
    practitioners: Sequence, clinics: Sequence, *, db: str, now: dt.datetime
) -> None:
    """Give each practitioner its ``language_list`` and ``payer_list`` and each clinic its
    ``hours_list`` and ``hours_today``, for a whole page in one query (a UNION of the three
    look-ups, so a result page or profile keeps its fixed number of queries)."""
    from django.apps import apps
    from django.db import connections

    practitioner_model = apps.get_model("practitioners", "Practitioner")
    languages_table = practitioner_model.languages.through._meta.db_table
    payers_table = practitioner_model.payers.through._meta.db_table
    practitioner_ids = [p.pk for p in practitioners]
    clinic_ids = [c.pk for c in clinics if c is not None]
    by_practitioner: dict[int, dict[str, list]] = {
        pk: {"language": [], "payer": []} for pk in practitioner_ids
    }
    hours: dict[int, list[OpeningHours]] = {pk: [] for pk in clinic_ids}
    parts, params = [], []
    text = "VARCHAR(120)"
    if practitioner_ids:
        marks = ", ".join(["%s"] * len(practitioner_ids))
        parts.append(
            f"SELECT 'language', t.practitioner_id, CAST(g.code AS {text}), "
            f"CAST(g.name AS {text}), CAST(NULL AS {text}), g.id "
            f"FROM {languages_table} t JOIN {Language._meta.db_table} g ON g.id = t.language_id "
            f"WHERE t.practitioner_id IN ({marks})"
        )
        parts.append(
            f"SELECT 'payer', t.practitioner_id, CAST(y.slug AS {text}), "
            f"CAST(y.name AS {text}), CAST(NULL AS {text}), y.id "
            f"FROM {payers_table} t JOIN {Payer._meta.db_table} y ON y.id = t.payer_id "
            f"WHERE t.practitioner_id IN ({marks})"
        )
        params += [*practitioner_ids, *practitioner_ids]
    if clinic_ids:
        parts.append(
            f"SELECT 'hours', h.location_id, CAST(h.weekday AS {text}), CAST(h.opens AS {text}), "
            f"CAST(h.closes AS {text}), h.id FROM {OpeningHours._meta.db_table} h "
            f"WHERE h.location_id IN ({', '.join(['%s'] * len(clinic_ids))})"
        )
        params += clinic_ids
    if parts:
        with connections[db].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            rows = cursor.fetchall()
    else:
        rows = []
    for kind, owner, first, second, third, pk in rows:
        if kind == "language":
            by_practitioner[owner]["language"].append(Language(id=pk, code=first, name=second))
        elif kind == "payer":
            by_practitioner[owner]["payer"].append(Payer(id=pk, slug=first, name=second))
        else:
            interval = OpeningHours(
                id=pk,
                location_id=owner,
                weekday=int(first),
                opens=dt.time.fromisoformat(second[:8]),
                closes=dt.time.fromisoformat(third[:8]),
            )
            hours[owner].append(interval)
    for practitioner in practitioners:
        found = by_practitioner[practitioner.pk]
        practitioner.language_list = sorted(found["language"], key=lambda g: g.name)
        practitioner.payer_list = sorted(found["payer"], key=lambda y: y.name)
    for clinic in clinics:
        if clinic is None:
            continue
        clinic.hours_list = sorted(hours[clinic.pk], key=lambda h: (h.weekday, h.opens))
        clinic.hours_today = todays_hours(clinic, clinic.hours_list, now)


def interval(location_id: int, weekday: int, opens: dt.time, closes: dt.time) -> OpeningHours:
    """An unsaved interval with its minutes set, for ``bulk_create`` (which skips ``save``)."""
    start, end = minutes_of_week(weekday, opens, closes)
    return OpeningHours(
        location_id=location_id,
        weekday=weekday,
        opens=opens,
        closes=closes,
        start_minute=start,
        end_minute=end,
    )


# --- Hours as text: "Mo-Fr 08:00-12:00,13:00-18:00; Sa 09:00-13:00" --------------------------
# A subset of OpenStreetMap's opening_hours syntax, what the CSV import reads and the export
# writes: days (Mo Tu We Th Fr Sa Su, ranges with "-", lists with ","), a space, then intervals.

DAY_CODES = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]


def _parse_time(text: str) -> dt.time:
    hours_text, _, minutes_text = text.strip().partition(":")
    if not (hours_text.isdigit() and minutes_text.isdigit() and len(minutes_text) == 2):
        raise ValueError(f"{text!r} is not a time like 08:30")
    hour, minute = int(hours_text), int(minutes_text)
    if hour == 24 and minute == 0:
        return dt.time(0)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{text!r} is not a time like 08:30")
    return dt.time(hour, minute)


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAY_CODES or (last and last not in DAY_CODES):
            raise ValueError(f"{part.strip()!r} is not a day like Mo or a range like Mo-Fr")
        start = DAY_CODES.index(first)
        end = DAY_CODES.index(last) if last else start
        days += [(start + k) % 7 for k in range((end - start) % 7 + 1)]
    return days


def parse_hours(text: str) -> list[tuple[int, dt.time, dt.time]]:
    """``"Mo-Fr 08:00-18:00; Sa 09:00-13:00"`` -> [(weekday, opens, closes), ...]; an interval
    that closes at or before it opens runs past midnight. Raises ValueError saying what is wrong."""
    rows: list[tuple[int, dt.time, dt.time]] = []
    for rule in filter(None, (part.strip() for part in text.split(";"))):
        days_text, _, spans_text = rule.partition(" ")
        if not spans_text.strip():
            raise ValueError(f"{rule!r} needs days and times, like 'Mo-Fr 08:00-18:00'")
        days = _parse_days(days_text)
        for span in spans_text.split(","):
            opens_text, dash, closes_text = span.strip().partition("-")
            if not dash:
                raise ValueError(f"{span.strip()!r} is not an interval like 08:00-18:00")
            opens, closes = _parse_time(opens_text), _parse_time(closes_text)
            if opens == closes and opens != dt.time(0):
                raise ValueError(f"{span.strip()!r} opens and closes at the same time")
            rows += [(day, opens, closes) for day in days]
    return sorted(set(rows))


def format_hours(hours: Iterable[OpeningHours]) -> str:
    """The text :func:`parse_hours` reads, with consecutive days of the same hours joined."""
    spans_by_day: dict[int, str] = {}
    for h in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        span = f"{h.opens:%H:%M}-{h.closes:%H:%M}"
        spans_by_day[h.weekday] = (
            f"{spans_by_day[h.weekday]},{span}" if h.weekday in spans_by_day else span
        )
    rules: list[str] = []
    day = 0
    while day < 7:
        if day not in spans_by_day:
            day += 1
            continue
        last = day
        while last + 1 < 7 and spans_by_day.get(last + 1) == spans_by_day[day]:
            last += 1
        days = DAY_CODES[day] if last == day else f"{DAY_CODES[day]}-{DAY_CODES[last]}"
        rules.append(f"{days} {spans_by_day[day]}")
        day = last + 1
    return "; ".join(rules)


# --- ... or as three columns of a page's own row query ----------------------------------------

_SEPARATOR = "\x1f"  # ASCII unit separator: in no code, name or time


def details_columns_sql(vendor: str, *, practitioner: str = "p", clinic: str = "l") -> list[str]:
    """Three scalar subqueries a result page's row query selects, so the practitioner's
    languages and payers and the clinic's hours come with the row at no extra statement
    (:func:`apply_details_columns` reads them)."""
    from django.apps import apps

    model = apps.get_model("practitioners", "Practitioner")
    languages_table = model.languages.through._meta.db_table
    payers_table = model.payers.through._meta.db_table

    def joined(expression: str) -> str:
        if vendor == "postgresql":
            return f"string_agg({expression}, '{_SEPARATOR}')"
        return f"group_concat({expression}, '{_SEPARATOR}')"

    text = "VARCHAR(120)"
    sep = f"'{_SEPARATOR}'"
    hour = (
        f"CAST(h.weekday AS {text}) || {sep} || CAST(h.opens AS {text}) || {sep} || "
        f"CAST(h.closes AS {text})"
    )
    return [
        f"(SELECT {joined(f'g.code || {sep} || g.name')} FROM {languages_table} t "
        f"JOIN {Language._meta.db_table} g ON g.id = t.language_id "
        f"WHERE t.practitioner_id = {practitioner}.id)",
        f"(SELECT {joined(f'y.slug || {sep} || y.name')} FROM {payers_table} t "
        f"JOIN {Payer._meta.db_table} y ON y.id = t.payer_id "
        f"WHERE t.practitioner_id = {practitioner}.id)",
        f"(SELECT {joined(hour)} FROM {OpeningHours._meta.db_table} h "
        f"WHERE h.location_id = {clinic}.id)",
    ]


def apply_details_columns(practitioner, clinic, values: Sequence, *, now: dt.datetime) -> None:
    """What :func:`attach_practice_details` sets, from the three columns of
    :func:`details_columns_sql`."""
    languages, payers, hours = values

    def parts(joined: str | None, width: int) -> list[list[str]]:
        if not joined:
            return []
        fields = joined.split(_SEPARATOR)
        return [fields[i : i + width] for i in range(0, len(fields), width)]

    practitioner.language_list = sorted(
        (Language(code=code, name=name) for code, name in parts(languages, 2)),
        key=lambda g: g.name,
    )
    practitioner.payer_list = sorted(
        (Payer(slug=slug, name=name) for slug, name in parts(payers, 2)), key=lambda y: y.name
    )
    if clinic is None:  # a listing without a clinic (the search by name)
        return
    clinic.hours_list = sorted(
        (
            OpeningHours(
                location_id=clinic.pk,
                weekday=int(weekday),
                opens=dt.time.fromisoformat(opens[:8]),
                closes=dt.time.fromisoformat(closes[:8]),
            )
            for weekday, opens, closes in parts(hours, 3)
        ),
        key=lambda h: (h.weekday, h.opens),
    )
    clinic.hours_today = todays_hours(clinic, clinic.hours_list, now)
