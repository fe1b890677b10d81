"""The earth, with plain numbers: origins, distances against geopy's geodesic, bounding boxes."""

import math
import random

import pytest
from geopy.distance import geodesic

from practitioners.search import geo

US_POINTS = [
    (35.1124, -89.9034),  # Memphis
    (40.7506, -73.9972),  # Manhattan
    (61.2176, -149.8997),  # Anchorage
    (21.3100, -157.8581),  # Honolulu
    (25.7617, -80.1918),  # Miami
    (47.6062, -122.3321),  # Seattle
    (64.8378, -147.7164),  # Fairbanks
    (18.4655, -66.1057),  # San Juan
    (45.8, -108.5),  # Montana
]


def test_zip_resolves_to_its_city_with_leading_zero_kept():
    origin = geo.origin_from_zip("02139")
    assert origin.zip == "02139"
    assert (origin.city, origin.state) == ("Cambridge", "MA")


def test_zip_plus_four_resolves_to_the_five_digit_zip():
    assert geo.origin_from_zip("38117-1234").zip == "38117"
    assert geo.origin_from_zip("381171234").zip == "38117"


@pytest.mark.parametrize("text", ["3811", "381177", "abcde", "", "38 117", "٣٨١١٧", "38117-12"])
def test_malformed_zip_is_refused_with_a_message(text):
    with pytest.raises(geo.OriginError, match="5-digit ZIP"):
        geo.origin_from_zip(text)


def test_unknown_zip_says_it_was_not_found():
    with pytest.raises(geo.OriginError, match="00000 was not found"):
        geo.origin_from_zip("00000")


def test_city_and_state_resolve_near_the_city():
    origin = geo.origin_from_place("memphis,  tn")
    assert (origin.city, origin.state) == ("Memphis", "TN")
    assert geo.distance_mi(origin.latitude, origin.longitude, 35.1495, -90.0490) < 15


def test_saint_abbreviations_find_the_same_city():
    assert geo.origin_from_place("St. Louis, MO").state == "MO"
    assert (
        geo.origin_from_place("Saint Louis, MO").city == geo.origin_from_place("St Louis, MO").city
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nowhereville, TN", 'could not find "Nowhereville, TN" in Tennessee'),
        ("Nowhereville", 'could not find "Nowhereville"'),
        ("Memphis, Narnia", '"Narnia" is not a US state'),
        (" , ", "Enter a city and state"),
        ("Memphis, TN 00000", "00000 was not found"),
    ],
)
def test_unplaceable_city_is_refused_with_a_message(text, message):
    with pytest.raises(geo.OriginError, match=message):
        geo.origin_from_place(text)


@pytest.mark.parametrize(
    "text",
    [
        "Memphis, TN",
        "memphis tn",
        "Memphis Tennessee",
        "MEMPHIS, TENNESSEE",
        "memphis,tn",
        "Memphis, Tenn.",
        "  memphis   TN ",
    ],
)
def test_a_city_box_reads_a_comma_or_not_a_state_code_or_name_in_any_case(text):
    origin = geo.origin_from_place(text)
    assert (origin.label, origin.city, origin.state, origin.zip) == (
        "Memphis, TN",
        "Memphis",
        "TN",
        None,
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("new york new york", "New York, NY"),
        ("Kansas City Kansas", "Kansas City, KS"),
        ("Manchester N.H.", "Manchester, NH"),
        ("charleston west virginia", "Charleston, WV"),
        ("Washington, D.C.", "Washington, DC"),
        ("Salt Lake City", "Salt Lake City, UT"),
        ("chicago", "Chicago, IL"),
    ],
)
def test_several_word_cities_and_states_and_a_city_only_one_state_has(text, label):
    assert geo.origin_from_place(text).label == label


def test_a_city_name_that_several_states_have_lists_them_biggest_first():
    with pytest.raises(geo.AmbiguousPlace, match="There is a Memphis in 7 states") as raised:
        geo.origin_from_place("Memphis")
    labels = [choice.label for choice in raised.value.choices]
    assert labels[0] == "Memphis, TN"
    assert sorted(labels) == sorted(
        f"Memphis, {s}" for s in ("TN", "IN", "MI", "MO", "NE", "NY", "TX")
    )
    assert [c.label for c in geo.place_choices("memphis")] == labels
    assert geo.place_choices("Memphis, TN") == [] and geo.place_choices("Nowhere") == []
    # Each choice is a place the box accepts and finds again.
    for choice in raised.value.choices:
        assert geo.origin_from_place(choice.label) == choice


def test_a_city_offered_through_another_towns_zip_is_named_as_typed():
    labels = [choice.label for choice in geo.place_choices("Springfield")]
    assert "Springfield, VA" in labels and all(
        label.startswith("Springfield, ") for label in labels
    )


@pytest.mark.parametrize("text", ["38117", " 38117-1234 ", "Memphis, TN 38117", "memphis 38117"])
def test_a_zip_typed_in_the_city_box_is_used_as_the_zip(text):
    assert geo.origin_from_place(text) == geo.origin_from_zip("38117")


def test_coordinates_out_of_range_are_refused():
    with pytest.raises(geo.OriginError):
        geo.origin_from_coordinates(91, 0)
    with pytest.raises(geo.OriginError):
        geo.origin_from_coordinates(0, 181)


@pytest.mark.parametrize("start", US_POINTS)
def test_distance_is_within_half_a_percent_of_the_geodesic(start):
    rng = random.Random(hash(start))
    for _ in range(200):
        end = (start[0] + rng.uniform(-4, 4), start[1] + rng.uniform(-5, 5))
        true = geodesic(start, end).miles
        ours = geo.distance_mi(*start, *end)
        assert ours == pytest.approx(true, rel=0.005)


@pytest.mark.parametrize("origin_point", US_POINTS)
@pytest.mark.parametrize("radius", [5, 25, 100, 250, 500])
def test_bounding_box_holds_every_point_on_the_circle(origin_point, radius):
    origin = geo.Origin(*origin_point, label="x")
    box = geo.bounding_box(origin, radius)
    for bearing in range(0, 360, 3):
        # Walk exactly `radius` along the sphere the distance uses, then check the box has it.
        r = radius / geo.earth_radius_mi(origin.latitude)
        lat1, lon1, theta = map(math.radians, (origin.latitude, origin.longitude, bearing))
        lat2 = math.asin(
            math.sin(lat1) * math.cos(r) + math.cos(lat1) * math.sin(r) * math.cos(theta)
        )
        lon2 = lon1 + math.atan2(
            math.sin(theta) * math.sin(r) * math.cos(lat1),
            math.cos(r) - math.sin(lat1) * math.sin(lat2),
        )
        lat, lon = math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180
        assert box.min_latitude <= lat <= box.max_latitude
        if box.crosses_antimeridian:
            assert lon >= box.min_longitude or lon <= box.max_longitude
        else:
            assert box.min_longitude <= lon <= box.max_longitude


def test_bounding_box_wraps_across_the_antimeridian_in_the_aleutians():
    box = geo.bounding_box(geo.Origin(51.88, -176.65, label="Adak"), 250)
    assert box.crosses_antimeridian
    assert box.min_longitude > 170 and box.max_longitude < -170


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("38117", "38117"),
        (" 38117-1234 ", "38117"),
        ("381171234", "38117"),
        ("02134", "02134"),
        ("3811", None),
        ("38117-12", None),
        ("ABCDE", None),
        ("\uff13\uff18\uff11\uff11\uff17", None),  # full-width digits
        ("", None),
    ],
)
def test_one_zip_rule_keeps_leading_zeros_and_refuses_what_is_not_a_zip(typed, expected):
    assert geo.normalise_zip(typed) == expected


@pytest.mark.parametrize(
    ("latitude", "longitude", "inside"),
    [
        (35.11, -89.90, True),  # Memphis
        (61.22, -149.90, True),  # Anchorage
        (52.0, 175.0, True),  # the Aleutians west of the antimeridian
        (21.31, -157.86, True),  # Honolulu
        (18.47, -66.11, True),  # San Juan
        (-89.90, 35.11, False),  # Memphis typed the wrong way round
        (51.51, -0.13, False),  # London
    ],
)
def test_the_one_inside_the_us_check_knows_the_states_and_territories(latitude, longitude, inside):
    assert geo.inside_us(latitude, longitude) is inside


def test_the_zip_tables_are_kept_out_of_the_garbage_collectors_full_passes():
    import gc

    # Each ZIP table, once built, is frozen with everything else alive: the collector's full
    # passes (a pause of a third of a second each with them) no longer walk its rows.
    geo.origin_from_zip("38117")
    geo.origin_from_place("Memphis, TN")
    zips, places = geo._zip_index(), geo._place_index()
    tracked = {id(obj) for obj in gc.get_objects()}
    assert gc.get_freeze_count() >= len(zips)
    assert id(zips) not in tracked and id(zips["38117"]) not in tracked
    assert id(places) not in tracked
