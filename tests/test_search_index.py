"""The copies on each clinic that a distance search filters by stay right on every write path."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection

from practitioners.models import Certification, Location, Practitioner, PractitionerCertification
from practitioners.search import geo
from practitioners.search import index as search_index
from practitioners.search.query import count_near, nearest
from tests.factories import (
    LocationFactory,
    PractitionerFactory,
    certification,
    practitioner_at,
    search_params,
)

pytestmark = pytest.mark.django_db

MEMPHIS = geo.origin_from_zip("38117")


def columns(practitioner: Practitioner) -> set[tuple]:
    """(listed, bits of lasting certificates[, bits of dated ones when there are any])."""
    rows = Location.objects.filter(practitioner=practitioner).values_list(
        "listed", "certification_bits", "expiring_certification_bits"
    )
    return {row if row[2] else row[:2] for row in rows}


def bits(*slugs: str) -> int:
    return search_index.certification_bits(certification(slug).id for slug in slugs)


def found(*certifications: str, radius: float = 10) -> list[str]:
    """Names the search's own SQL finds within ``radius`` of Memphis, nearest first."""
    return [
        Practitioner.objects.get(pk=match.practitioner_id).name
        for match in nearest(search_params(MEMPHIS, radius, certifications))
    ]


def test_a_new_clinic_copies_its_practitioners_status_and_certifications():
    person = practitioner_at(35.11, -89.90, certifications=["art", "graston"])
    LocationFactory(practitioner=person)
    draft = practitioner_at(35.11, -89.90, status=Practitioner.Status.DRAFT)

    assert columns(person) == {(True, bits("art", "graston"))}
    assert columns(draft) == {(False, 0)}


def test_publishing_or_suspending_by_queryset_update_relists_every_clinic():
    person = practitioner_at(35.11, -89.90, status=Practitioner.Status.PENDING)
    LocationFactory(practitioner=person)

    Practitioner.objects.filter(pk=person.pk).update(status=Practitioner.Status.PUBLISHED)
    assert columns(person) == {(True, 0)}
    assert found() == [person.name]

    Practitioner.objects.filter(pk=person.pk).update(status=Practitioner.Status.SUSPENDED)
    assert columns(person) == {(False, 0)}
    assert found() == []


def test_adding_moving_and_removing_certificates_updates_every_clinic():
    first = practitioner_at(35.11, -89.90)
    LocationFactory(practitioner=first)
    second = practitioner_at(35.12, -89.90)

    PractitionerCertification.objects.bulk_create(
        [PractitionerCertification(practitioner=first, certification=certification("art"))]
    )
    record = PractitionerCertification.objects.create(
        practitioner=first, certification=certification("graston")
    )
    assert columns(first) == {(True, bits("art", "graston"))}

    PractitionerCertification.objects.filter(pk=record.pk).update(practitioner=second)
    assert columns(first) == {(True, bits("art"))}
    assert columns(second) == {(True, bits("graston"))}

    PractitionerCertification.objects.filter(practitioner=first).delete()
    assert columns(first) == {(True, 0)}


def test_a_clinic_moved_to_another_practitioner_takes_the_new_owners_copies():
    published = practitioner_at(35.11, -89.90, certifications=["art"])
    draft = PractitionerFactory(status=Practitioner.Status.DRAFT)

    Location.objects.filter(practitioner=published).update(practitioner=draft)

    assert columns(draft) == {(False, 0)}


def test_saving_a_stale_clinic_instance_never_writes_stale_copies():
    person = practitioner_at(35.11, -89.90, status=Practitioner.Status.PENDING)
    clinic = Location.objects.get(practitioner=person)  # read while the listing was pending

    Practitioner.objects.filter(pk=person.pk).update(status=Practitioner.Status.PUBLISHED)
    PractitionerCertification.objects.create(
        practitioner=person, certification=certification("art")
    )
    clinic.name = "Renamed in the admin"
    clinic.save()  # the instance still says listed=False, bits=0

    assert columns(person) == {(True, bits("art"))}
    assert found("art") == [person.name]


def test_two_certifications_sharing_a_bit_never_match_each_other():
    art = certification("art")
    twin = Certification.objects.create(
        pk=art.pk + search_index.BITS, slug="twin", name="Shares ART's bit"
    )
    assert search_index.certification_bit(twin.pk) == search_index.certification_bit(art.pk)
    holder = practitioner_at(35.11, -89.90, name="Holds the twin only")
    PractitionerCertification.objects.create(practitioner=holder, certification=twin)

    assert found("art") == []
    assert count_near(search_params(MEMPHIS, 10, ["art"]), up_to=10) == 0
    assert found("twin") == [holder.name]


def test_an_unfiltered_search_still_finds_unlisted_practitioners():
    practitioner_at(35.11, -89.90, name="Draft", status=Practitioner.Status.DRAFT)
    practitioner_at(35.12, -89.90, name="Published")

    # The search itself only ever looks for published listings (SearchParams has no way to
    # ask otherwise); near(), the general form, still finds both.
    unfiltered = Practitioner.objects.all().near(MEMPHIS, 10)
    assert list(unfiltered.values_list("name", flat=True)) == ["Draft", "Published"]
    assert found() == ["Published"]


def _drop_triggers() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER location_search_columns ON {search_index.LOCATION}")
        else:
            cursor.execute("DROP TRIGGER location_search_columns_insert")


def _drop_all_triggers() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for trigger, table in (
                ("location_search_columns", search_index.LOCATION),
                ("practitioner_status_to_locations", search_index.PRACTITIONER),
                ("certifications_to_locations", search_index.RECORD),
            ):
                cursor.execute(f"DROP TRIGGER {trigger} ON {table}")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            for (name,) in cursor.fetchall():
                cursor.execute(f"DROP TRIGGER {name}")


def test_migrate_puts_back_triggers_a_table_rebuild_dropped():
    _drop_triggers()

    call_command("migrate", verbosity=0)
    person = practitioner_at(35.11, -89.90, certifications=["art"])

    assert columns(person) == {(True, bits("art"))}


def test_a_dated_certificate_is_kept_apart_and_checked_on_the_day_of_the_search():
    from django.utils import timezone

    today = timezone.localdate()
    person = practitioner_at(35.11, -89.90, name="Dated")
    record = PractitionerCertification.objects.create(
        practitioner=person, certification=certification("art"), expires_on=today
    )

    assert columns(person) == {(True, 0, bits("art"))}
    assert found("art") == ["Dated"]  # valid through its last day
    PractitionerCertification.objects.filter(pk=record.pk).update(
        expires_on=today - dt.timedelta(days=1)
    )
    assert found("art") == []
    assert count_near(search_params(MEMPHIS, 10, ["art"]), up_to=10) == 0
    PractitionerCertification.objects.filter(pk=record.pk).update(expires_on=None)
    assert columns(person) == {(True, bits("art"))}
    assert found("art") == ["Dated"]


def test_the_migration_fills_the_columns_of_existing_clinics_as_the_triggers_would():
    import importlib

    migration = importlib.import_module("practitioners.migrations.0005_location_search_columns")
    plain = practitioner_at(35.11, -89.90, certifications=["art", "graston"])
    dated = practitioner_at(35.11, -89.90, certifications=["art"], expires_on=dt.date(2030, 1, 1))
    draft = practitioner_at(35.11, -89.90, status=Practitioner.Status.DRAFT)
    expected = {p.pk: columns(p) for p in (plain, dated, draft)}
    _drop_all_triggers()
    Location.objects.update(listed=False, certification_bits=0, expiring_certification_bits=0)

    # The function reads only the editor's connection (SQLite's editor refuses to open here).
    migration.fill_search_columns(None, SimpleNamespace(connection=connection))

    assert {p.pk: columns(p) for p in (plain, dated, draft)} == expected
    assert expected[dated.pk] == {(True, 0, bits("art"))}

    LocationFactory(practitioner=plain)
    Location.objects.update(has_other_clinics=False)
    later = importlib.import_module("practitioners.migrations.0006_location_has_other_clinics")
    later.fill_has_other_clinics(None, SimpleNamespace(connection=connection))
    assert others(plain) == [True, True] and others(draft) == [False]


@pytest.mark.parametrize(
    "latitude",
    [-14.2799, 35.0, 35.09999, 35.1, 64.8378],  # Pago Pago, band edges, Fairbanks
)
def test_every_latitude_lands_in_the_band_the_search_looks_in(latitude):
    person = practitioner_at(latitude, -120.0, name="Here")
    origin = geo.origin_from_coordinates(latitude, -120.0)
    band = Location.objects.get(practitioner=person).latitude_band

    assert band in search_index.latitude_bands(latitude - 0.001, latitude + 0.001)
    assert [m.practitioner_id for m in nearest(search_params(origin, 1))] == [person.pk]


def test_a_clinic_moved_by_the_geocoder_is_found_at_its_new_place():
    person = practitioner_at(35.11, -89.90, name="Moved")
    seattle = geo.origin_from_zip("98101")

    Location.objects.filter(practitioner=person).update(
        latitude=seattle.latitude, longitude=seattle.longitude
    )

    assert found() == []
    assert [m.practitioner_id for m in nearest(search_params(seattle, 5))] == [person.pk]


def others(practitioner: Practitioner) -> list[bool]:
    return list(
        Location.objects.filter(practitioner=practitioner)
        .order_by("pk")
        .values_list("has_other_clinics", flat=True)
    )


def test_a_practitioners_clinics_know_when_they_have_company():
    person = practitioner_at(35.11, -89.90)
    assert others(person) == [False]

    second = LocationFactory(practitioner=person)
    assert others(person) == [True, True]

    elsewhere = PractitionerFactory()
    Location.objects.filter(pk=second.pk).update(practitioner=elsewhere)
    assert others(person) == [False] and others(elsewhere) == [False]

    LocationFactory(practitioner=elsewhere)
    Location.objects.filter(pk=second.pk).delete()
    assert others(elsewhere) == [False]


# --- The practice filters' copies (practice_bits, language_bits, payer_bits) -------------------


def practice_copies(practitioner: Practitioner) -> set[tuple[int, int, int]]:
    return set(
        Location.objects.filter(practitioner=practitioner).values_list(
            "practice_bits", "language_bits", "payer_bits"
        )
    )


def near_memphis(**practice) -> list[str]:
    from practitioners.search.practice_filters import PracticeFilters

    params = search_params(MEMPHIS, 10, practice=PracticeFilters(**practice))
    return [Practitioner.objects.get(pk=m.practitioner_id).name for m in nearest(params)]


def test_opening_hours_mark_their_clinic_open_evenings_or_weekends_until_they_are_removed():
    from practitioners.practice import OpeningHours

    person = practitioner_at(35.11, -89.90, name="Hours")
    clinic = person.locations.get()
    assert practice_copies(person) == {(0, 0, 0)}

    saturday = OpeningHours.objects.create(
        location=clinic, weekday=5, opens=dt.time(9), closes=dt.time(13)
    )
    assert practice_copies(person) == {(search_index.OPEN_WEEKENDS, 0, 0)}
    assert near_memphis(open="weekends") == ["Hours"]
    assert near_memphis(open="evenings") == []

    # A Tuesday until 20:00, through the ORM's bulk path, then moved to Saturday by an update.
    late = OpeningHours(location=clinic, weekday=1, opens=dt.time(12), closes=dt.time(20))
    late.start_minute, late.end_minute = 1 * 1440 + 720, 1 * 1440 + 1200
    OpeningHours.objects.bulk_create([late])
    both = search_index.OPEN_WEEKENDS | search_index.OPEN_EVENINGS
    assert practice_copies(person) == {(both, 0, 0)}
    assert near_memphis(open="evenings") == ["Hours"]

    saturday.delete()
    assert practice_copies(person) == {(search_index.OPEN_EVENINGS, 0, 0)}
    assert near_memphis(open="weekends") == []
    OpeningHours.objects.filter(location=clinic).delete()
    assert practice_copies(person) == {(0, 0, 0)}
    assert near_memphis(open="evenings") == []


def test_hours_written_in_bulk_or_moved_by_an_update_recompute_every_clinic_they_touch():
    from practitioners.practice import OpeningHours

    people = [practitioner_at(35.11, -89.90, name=f"Bulk {k}") for k in range(3)]
    clinics = [person.locations.get() for person in people]
    # One statement writes the hours of three clinics, two rows each.
    rows = []
    for clinic in clinics:
        for weekday in (5, 6):
            row = OpeningHours(
                location=clinic, weekday=weekday, opens=dt.time(9), closes=dt.time(13)
            )
            row.start_minute, row.end_minute = weekday * 1440 + 540, weekday * 1440 + 780
            rows.append(row)
    OpeningHours.objects.bulk_create(rows)
    assert [practice_copies(p) for p in people] == [{(search_index.OPEN_WEEKENDS, 0, 0)}] * 3
    assert near_memphis(open="weekends") == ["Bulk 0", "Bulk 1", "Bulk 2"]

    # Moved to a weekday morning: no longer a weekend clinic.
    OpeningHours.objects.filter(location=clinics[0]).update(weekday=2, end_minute=2 * 1440 + 780)
    assert practice_copies(people[0]) == {(0, 0, 0)}
    # Moved to another clinic: the one it left and the one it joined both recompute.
    OpeningHours.objects.filter(location=clinics[1]).update(location=clinics[0])
    assert practice_copies(people[0]) == {(search_index.OPEN_WEEKENDS, 0, 0)}
    assert practice_copies(people[1]) == {(0, 0, 0)}
    # An update that changes nothing the copies read leaves them as they are.
    OpeningHours.objects.filter(location=clinics[2]).update(opens=dt.time(10))
    assert practice_copies(people[2]) == {(search_index.OPEN_WEEKENDS, 0, 0)}
    assert near_memphis(open="weekends") == ["Bulk 0", "Bulk 2"]


def test_self_pay_sliding_scale_languages_and_payers_reach_every_clinic_of_the_practitioner():
    from practitioners.practice import Language, Payer

    person = practitioner_at(35.11, -89.90, name="Payment")
    LocationFactory(practitioner=person)
    spanish = Language.objects.get(code="es")
    medicare = Payer.objects.get(slug="medicare")

    Practitioner.objects.filter(pk=person.pk).update(self_pay=True, sliding_scale=True)
    person.languages.add(spanish)
    person.payers.add(medicare)
    copied = (
        search_index.SELF_PAY | search_index.SLIDING_SCALE,
        search_index.certification_bit(spanish.id),
        search_index.certification_bit(medicare.id),
    )
    assert practice_copies(person) == {copied}
    found_here = near_memphis(
        self_pay=True, sliding_scale=True, language_ids=(spanish.id,), payer_id=medicare.id
    )
    assert found_here == ["Payment"]

    person.languages.remove(spanish)
    person.payers.clear()
    person.refresh_from_db()
    person.self_pay = False
    person.save()
    assert practice_copies(person) == {(search_index.SLIDING_SCALE, 0, 0)}
    assert near_memphis(self_pay=True) == []
    assert near_memphis(language_ids=(spanish.id,)) == []


def test_a_wheelchair_entrance_is_copied_from_the_clinics_own_row():
    person = practitioner_at(35.11, -89.90, name="Ramp")

    Location.objects.filter(practitioner=person).update(wheelchair_entrance=True)
    assert practice_copies(person) == {(search_index.WHEELCHAIR, 0, 0)}
    assert near_memphis(wheelchair=True) == ["Ramp"]

    clinic = person.locations.get()
    clinic.wheelchair_entrance = False
    clinic.save()
    assert near_memphis(wheelchair=True) == []


def test_languages_that_share_a_bit_are_told_apart_by_the_exact_check():
    from practitioners.practice import Language

    first = Language.objects.create(code="zz1", name="First")
    twin = Language.objects.create(id=first.id + search_index.BITS, code="zz2", name="Twin")
    speaker = practitioner_at(35.11, -89.90, name="Speaks the twin")
    speaker.languages.add(twin)

    assert practice_copies(speaker) == {(0, search_index.certification_bit(first.id), 0)}
    assert near_memphis(language_ids=(first.id,)) == []
    assert near_memphis(language_ids=(twin.id,)) == ["Speaks the twin"]


def test_a_closure_date_is_flagged_and_read_only_on_the_days_it_decides():
    from django.utils import timezone

    from practitioners.practice import OpeningHours

    person = practitioner_at(35.11, -89.90, name="Closed")
    clinic = person.locations.get()
    OpeningHours.objects.create(location=clinic, weekday=6, opens=dt.time(10), closes=dt.time(14))
    today = timezone.localdate()

    Location.objects.filter(pk=clinic.pk).update(reopens_on=today + dt.timedelta(days=3))
    flagged = search_index.OPEN_WEEKENDS | search_index.CLOSURE_DATED
    assert practice_copies(person) == {(flagged, 0, 0)}
    assert near_memphis(open="weekends") == []

    Location.objects.filter(pk=clinic.pk).update(reopens_on=today)
    assert near_memphis(open="weekends") == ["Closed"]  # open again from that day

    Location.objects.filter(pk=clinic.pk).update(reopens_on=None)
    assert practice_copies(person) == {(search_index.OPEN_WEEKENDS, 0, 0)}
    assert near_memphis(open="weekends") == ["Closed"]


def test_the_api_tells_languages_sharing_a_bit_apart_and_trusts_a_bit_no_other_shares(client):
    from practitioners.practice import Language

    first = Language.objects.create(code="zz1", name="First")
    twin = Language.objects.create(id=first.id + search_index.BITS, code="zz2", name="Twin")
    speaker = practitioner_at(35.11, -89.90, name="Speaks the twin")
    speaker.languages.add(twin)
    spanish = practitioner_at(35.12, -89.90, name="Habla")
    spanish.languages.add(Language.objects.get(code="es"))

    def names(code: str) -> list[str]:
        reply = client.get("/api/practitioners/", {"zip": "38117", "radius": 10, "language": code})
        assert reply.status_code == 200
        return [row["name"] for row in reply.json()["results"]]

    assert names("zz1") == []
    assert names("zz2") == ["Speaks the twin"]
    assert names("es") == ["Habla"]
