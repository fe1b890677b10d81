"""Search at scale: the fast paths return exactly what the slow, obvious computation returns."""

import math
import random

import pytest
from django.db.models import F, Min

from practitioners.ingest.bulk import insert_new
from practitioners.models import (
    Location,
    Practitioner,
    PractitionerCertification,
)
from practitioners.search import geo
from practitioners.search.query import (
    count_and_size,
    count_near,
    nearest,
    radius_holding,
    search_practitioners,
)
from tests.factories import (
    PractitionerFactory,
    certification,
    practitioner_at,
    profession,
    search_params,
)

pytestmark = pytest.mark.django_db

MANHATTAN = geo.origin_from_zip("10001")


def destination(origin: geo.Origin, miles: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``miles`` from ``origin`` along ``bearing_deg``, on the search's sphere."""
    d = miles / geo.earth_radius_mi(origin.latitude)
    lat1, lon1, b = map(math.radians, (origin.latitude, origin.longitude, bearing_deg))
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lon2 = lon1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    lon = (math.degrees(lon2) + 540) % 360 - 180
    return math.degrees(lat2), lon


def brute_force(queryset, origin: geo.Origin, radius: float) -> list[int]:
    """Every clinic's distance, no bounding box: the reference order."""
    distance = geo.distance_expression(origin, "locations__latitude", "locations__longitude")
    return list(
        queryset.values("pk", "name")
        .annotate(distance=Min(distance))
        .filter(distance__lte=radius)
        .order_by(F("distance"), "name", "pk")
        .values_list("pk", flat=True)
    )


@pytest.fixture
def dense_city():
    """1,200 practitioners within about 12 miles of Midtown, denser towards the middle, with 1-3
    clinics each, a few unpublished, some certified; written the way the import writes."""
    rng = random.Random(10001)
    people = [
        Practitioner(
            name=f"Person {rng.randint(1, 300):03d}",  # shared names exercise the tie-break
            slug=f"person-{i}",
            status="published" if rng.random() < 0.9 else "pending",
        )
        for i in range(1200)
    ]
    insert_new(people)
    clinics = []
    for person in people:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            lat, lon = destination(MANHATTAN, 12 * rng.random() ** 1.5, rng.uniform(0, 360))
            clinics.append(
                Location(
                    practitioner_id=person.pk,
                    address_line1="1 Main St",
                    city="New York",
                    state="NY",
                    postal_code="10001",
                    latitude=lat,
                    longitude=lon,
                )
            )
    insert_new(clinics)
    art = certification("art")
    insert_new(
        [
            PractitionerCertification(practitioner_id=p.pk, certification=art)
            for p in people
            if rng.random() < 0.3
        ]
    )
    return people


def test_every_page_of_a_dense_search_is_the_brute_force_page(client, settings, dense_city):
    settings.SEARCH_COUNT_CAP = 400
    reference = brute_force(Practitioner.objects.published(), MANHATTAN, 10)
    assert len(reference) > 400  # the count is capped, the pages still exact

    for page in (1, 2, 7, 20):
        body = client.get(f"/api/practitioners/?zip=10001&radius=10&page={page}").json()

        assert [r["id"] for r in body["results"]] == reference[(page - 1) * 20 : page * 20]
        assert body["count"] == 400
        assert body["count_is_capped"] is True


def test_a_dense_search_sorts_a_smaller_circle_that_provably_holds_the_page(settings, dense_city):
    settings.SEARCH_COUNT_CAP = 400
    matching = Practitioner.objects.published()
    params = search_params(MANHATTAN, 10)

    radius = radius_holding(count_and_size(params, needed=20, cap=400), 20)

    assert radius < 10
    assert count_near(search_params(MANHATTAN, radius), up_to=10_000) >= 20
    page = search_practitioners(params, page=1, per_page=20).page
    assert [p.pk for p in page] == brute_force(matching, MANHATTAN, 10)[:20]


def test_filtered_search_with_few_matches_pages_like_the_brute_force(client, dense_city):
    queryset = Practitioner.objects.published().holding([certification("art")])
    reference = brute_force(queryset, MANHATTAN, 3)

    body = client.get("/api/practitioners/?zip=10001&radius=3&certification=art").json()

    assert body["count"] == len(reference)
    assert body["count_is_capped"] is False
    assert [r["id"] for r in body["results"]] == reference[:20]


def test_count_near_counts_a_practitioner_with_three_clinics_in_range_once():
    person = practitioner_at(40.75, -73.99)
    for lat in (40.751, 40.752):
        Location.objects.create(
            practitioner=person,
            address_line1=f"{lat} Broadway",
            city="New York",
            state="NY",
            postal_code="10001",
            latitude=lat,
            longitude=-73.99,
        )
    practitioner_at(40.76, -73.98)

    published = Practitioner.objects.published()

    assert count_near(search_params(MANHATTAN, 5), up_to=100) == 2
    assert count_near(search_params(MANHATTAN, 5), up_to=1) == 1
    assert published.near(MANHATTAN, 5).count() == 2


def test_count_near_stops_at_the_cap_instead_of_counting_everyone(
    dense_city, django_assert_max_num_queries
):
    params = search_params(MANHATTAN, 12)

    with django_assert_max_num_queries(1):
        assert count_near(params, up_to=50) == 50


def test_filters_that_join_other_tables_still_give_the_same_results(dense_city):
    chiropractors = Practitioner.objects.published().filter(profession__slug="chiropractor")
    Practitioner.objects.filter(pk__in=[p.pk for p in dense_city[::2]]).update(
        profession=profession("chiropractor")
    )

    found = list(chiropractors.near(MANHATTAN, 4).values_list("pk", flat=True))
    params = search_params(MANHATTAN, 4, profession_id=profession("chiropractor").pk)

    assert found
    assert found == brute_force(chiropractors, MANHATTAN, 4)
    assert count_near(params, up_to=10_000) == len(found)
    assert [m.practitioner_id for m in nearest(params)] == found


@pytest.mark.parametrize(
    ("place", "radius"),
    [
        ((51.8800, -176.6581), 250),  # Adak, Aleutians: the circle crosses the antimeridian
        ((71.2906, -156.7886), 100),  # Utqiagvik, far north: the box must be wide enough
        ((61.2225, -149.8677), 250),  # Anchorage
        ((21.3179, -157.8521), 50),  # Honolulu
    ],
)
def test_points_just_inside_the_circle_are_found_and_just_outside_are_not(place, radius):
    origin = geo.origin_from_coordinates(*place)
    inside, outside = set(), set()
    for bearing in range(0, 360, 15):
        lat, lon = destination(origin, radius * 0.995, bearing)
        inside.add(practitioner_at(lat, lon, name=f"in {bearing}").pk)
        lat, lon = destination(origin, radius * 1.005, bearing)
        outside.add(practitioner_at(lat, lon, name=f"out {bearing}").pk)

    published = Practitioner.objects.published()
    found = list(published.near(origin, radius).values_list("pk", flat=True))

    assert set(found) == inside
    assert found == brute_force(published, origin, radius)
    assert count_near(search_params(origin, radius), up_to=1000) == len(inside)


def test_a_dense_search_page_runs_a_bounded_number_of_queries(
    client, settings, dense_city, django_assert_max_num_queries
):
    settings.SEARCH_COUNT_CAP = 400

    # choices, count with the probes that size the circle, page with its rows, certificates
    for url in (
        "/search/?zip=10001&radius=10",
        "/search/?zip=10001&radius=10&page=3",
        "/api/practitioners/?zip=10001&radius=10&certification=art",
    ):
        with django_assert_max_num_queries(4):
            response = client.get(url)

        assert response.status_code == 200


def test_insert_new_writes_what_bulk_create_writes():
    fast = Practitioner(name="Fast", slug="fast", nppes_values={"name": "Fast"})
    slow = Practitioner(name="Slow", slug="slow", nppes_values={"name": "Slow"})

    insert_new([fast])
    Practitioner.objects.bulk_create([slow])

    assert fast.pk is not None and not fast._state.adding
    stored_fast = Practitioner.objects.get(pk=fast.pk)
    stored_slow = Practitioner.objects.get(pk=slow.pk)
    for field in Practitioner._meta.concrete_fields:
        unique_per_row = {"id", "name", "slug", "external_id"}
        if field.name in {*unique_per_row, "nppes_values", "created_at", "updated_at"}:
            continue
        assert getattr(stored_fast, field.attname) == getattr(stored_slow, field.attname)
    # Both got a fresh external id from the model's default, each its own.
    assert stored_fast.external_id.startswith("pl-") and stored_slow.external_id.startswith("pl-")
    assert stored_fast.external_id != stored_slow.external_id
    assert stored_fast.nppes_values == {"name": "Fast"}
    assert stored_fast.created_at is not None and stored_fast.updated_at is not None
    assert PractitionerFactory().pk > fast.pk  # the sequence moved on


@pytest.mark.parametrize(
    ("narrow", "filters"),
    [
        (lambda qs: qs, {}),
        (lambda qs: qs.holding([certification("art")]), {"certifications": ["art"]}),
        (
            lambda qs: qs.holding([certification("art"), certification("graston")], "any"),
            {"certifications": ["art", "graston"], "match": "any"},
        ),
        (lambda qs: qs.filter(name__icontains="person 1"), {"name": "person 1"}),
        (
            lambda qs: qs.exclude(profession__slug="massage-therapist").filter(telehealth=False),
            {"telehealth": False},
        ),
        (
            lambda qs: qs.filter(new_patients="accepting", name__icontains="PERSON 2").holding(
                [certification("art")]
            ),
            {"accepting_new_patients": True, "name": "PERSON 2", "certifications": ["art"]},
        ),
    ],
    ids=["published", "art", "art-or-graston", "name", "profession", "combined"],
)
def test_the_search_pages_give_what_near_gives_for_any_filters(dense_city, narrow, filters):
    queryset = narrow(Practitioner.objects.published())
    expected = list(queryset.near(MANHATTAN, 6).values_list("pk", "nearest_location_id"))
    params = search_params(MANHATTAN, 6, **filters)

    matches = nearest(params)
    page = nearest(params, offset=20, limit=20)

    assert expected
    assert [(m.practitioner_id, m.location_id) for m in matches] == expected
    assert [(m.practitioner_id, m.location_id) for m in page] == expected[20:40]
    assert count_near(params, up_to=100_000) == len(expected)


@pytest.fixture
def dense_city_with_practice_details(dense_city):
    """The dense city, with languages on some practitioners and wheelchair access and weekend
    hours on some clinics (many practitioners have one clinic that passes and one that fails)."""
    from practitioners.practice import Language, interval

    rng = random.Random(17)
    spanish = Language.objects.get(code="es")
    through = Practitioner.languages.through
    through.objects.bulk_create(
        [
            through(practitioner_id=p.pk, language_id=spanish.pk)
            for p in dense_city
            if rng.random() < 0.5
        ]
    )
    clinics = list(Location.objects.filter(practitioner__in=dense_city).order_by("pk"))
    ramps = [c.pk for c in clinics if rng.random() < 0.5]
    Location.objects.filter(pk__in=ramps).update(wheelchair_entrance=True)
    import datetime as dt

    from practitioners.practice import OpeningHours

    OpeningHours.objects.bulk_create(
        [
            interval(c.pk, rng.choice([0, 5, 6]), dt.time(9), dt.time(13))
            for c in clinics
            if rng.random() < 0.6
        ]
    )
    return dense_city


def test_practice_filters_page_and_count_like_the_brute_force(
    client, settings, dense_city_with_practice_details
):
    """Spanish (on the practitioner), wheelchair and weekends (on the clinic shown): each page
    and the count are the brute force's, and each row shows the nearest clinic that passes."""
    from practitioners.practice import OpeningHours

    settings.SEARCH_COUNT_CAP = 10_000
    speaks = Practitioner.languages.through.objects.filter(language__code="es")
    passing = Location.objects.filter(
        practitioner__in=Practitioner.objects.published().filter(
            pk__in=speaks.values("practitioner_id")
        ),
        wheelchair_entrance=True,
        pk__in=OpeningHours.objects.filter(weekday__gte=5).values("location_id"),
    ).annotate(distance=geo.distance_expression(MANHATTAN))
    nearest_clinic: dict[int, tuple[float, int]] = {}
    for practitioner_id, pk, distance in passing.values_list("practitioner_id", "pk", "distance"):
        if distance <= 8 and (distance, pk) < nearest_clinic.get(practitioner_id, (1e9, 0)):
            nearest_clinic[practitioner_id] = (distance, pk)
    names = dict(Practitioner.objects.values_list("pk", "name"))
    reference = sorted(nearest_clinic, key=lambda pk: (nearest_clinic[pk][0], names[pk], pk))
    assert len(reference) > 40

    query = "zip=10001&radius=8&language=es&wheelchair=true&open=weekends"
    for page in (1, 2, 3):
        body = client.get(f"/api/practitioners/?{query}&page={page}").json()
        expected = reference[(page - 1) * 20 : page * 20]
        assert [r["id"] for r in body["results"]] == expected
        shown = [round(r["distance_mi"], 1) for r in body["results"]]
        assert shown == [round(nearest_clinic[pk][0], 1) for pk in expected]
        assert body["count"] == len(reference)
