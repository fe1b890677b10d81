"""Every link a results page offers keeps the search: followed as a browser follows it.

Each test resolves the link's ``href`` against the page's URL, requests it, and reads the next
page: the search form still shows the origin, radius and filters, the heading still says where
the search is from, and the rows are the ones that page should show.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from practitioners.search import geo
from tests.browsing import follow, form, link, links, local_path, page_url, soup, text_of
from tests.factories import practitioner_at, practitioner_near_zip

pytestmark = pytest.mark.django_db

MEMPHIS = "38117"


def names(response) -> list[str]:
    return [a.get_text(strip=True) for a in soup(response).select(".result-name a")]


def search_kept(response, **expected: str | list[str]) -> None:
    """The next page's search form shows the same search: each field holds what it held."""
    assert response.status_code == 200, text_of(response, ".notice, .field-error")
    shown = form(response, "form.search-form")
    for name, value in expected.items():
        if isinstance(value, list):
            assert sorted(v for k, v in shown.fields if k == name) == sorted(value), name
        else:
            assert shown.value(name) == value, name


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def art_holders_north_of(latitude: float, longitude: float) -> None:
    """45 practitioners holding ART, 1 to 45 tenths of a mile north of a point: 3 pages."""
    for i in range(45):
        practitioner_at(
            latitude + 0.1 * (i + 1) / 69.05, longitude, name=f"P{i:02d}", certifications=["art"]
        )
    practitioner_at(latitude + 0.05 / 69.05, longitude, name="No ART")  # filtered out


@pytest.fixture
def forty_five_art_holders():
    centroid = geo.zip_centroid(MEMPHIS)
    art_holders_north_of(centroid.latitude, centroid.longitude)


@pytest.mark.parametrize(
    ("start", "origin_fields", "heading"),
    [
        (
            f"/search/?zip={MEMPHIS}&radius=250&certification=art",
            {"zip": MEMPHIS},
            "within 250 miles of 38117 (Memphis, TN)",
        ),
        (
            "/search/?near=Memphis%2C+TN&radius=250&certification=art",
            {"near": "Memphis, TN"},
            "within 250 miles of Memphis, TN",
        ),
        (
            "/search/?lat=35.1124&lon=-89.9034&radius=250&certification=art",
            {"lat": "35.1124", "lon": "-89.9034"},
            "within 250 miles of your location",
        ),
    ],
    ids=["zip", "city", "lat-lon"],
)
def test_next_page_numbers_and_previous_keep_origin_radius_and_filters(
    client, start, origin_fields, heading
):
    city = geo.origin_from_place("Memphis, TN")
    if "near" in origin_fields:  # a city's centre is not its ZIP's: the order is from there
        art_holders_north_of(city.latitude, city.longitude)
    else:
        art_holders_north_of(35.1124, -89.9034)
    kept = {**origin_fields, "radius": "250", "certification": ["art"]}
    first = client.get(start)
    search_kept(first, **kept)
    assert names(first) == [f"P{i:02d}" for i in range(20)]
    assert "45 practitioners" in text_of(first, "#results-heading")

    second = follow(client, first, text="Next")

    search_kept(second, **kept)
    assert heading in text_of(second, "#results-heading")
    assert names(second) == [f"P{i:02d}" for i in range(20, 40)]
    assert "Page 2 of 3" in text_of(second, ".pagination")
    # Clicking on from a followed link keeps working (no "??" piling up).
    third = follow(client, second, text="Next")
    search_kept(third, **kept)
    assert names(third) == [f"P{i:02d}" for i in range(40, 45)]
    assert names(follow(client, third, text="Previous")) == names(second)
    assert names(follow(client, second, text="Previous")) == names(first)
    # The page numbers: each one shows its page, with the same search.
    numbered = links(second, ".page-numbers a")
    assert [query_of(url)["page"] for url in numbered] == [["1"], ["2"], ["3"]]
    for number, url in enumerate(numbered, start=1):
        page = client.get(local_path(url))
        search_kept(page, **kept)
        assert f"Page {number} of 3" in text_of(page, ".pagination")
        assert names(page) == [f"P{i:02d}" for i in range(20 * (number - 1), min(20 * number, 45))]


def test_every_link_in_the_pagination_carries_each_parameter_once(client, forty_five_art_holders):
    response = client.get(f"/search/?zip={MEMPHIS}&radius=250&certification=art&page=2")
    for url in links(response, ".pagination a"):
        query = query_of(url)
        assert set(query) == {"zip", "radius", "certification", "page"}, url
        assert all(len(values) == 1 for values in query.values()), url
        assert not urlsplit(url).query.startswith("?"), url


def test_page_numbers_skip_the_middle_of_a_long_list_but_keep_first_and_last(client):
    for i in range(9 * 20):
        practitioner_near_zip(MEMPHIS, 0.01 * (i + 1), name=f"P{i:03d}")
    response = client.get(f"/search/?zip={MEMPHIS}&page=5")
    shown = " ".join(text_of(response, ".page-numbers").replace("Page ", "").split())
    assert shown == "1 … 3 4 5 6 7 … 9"
    current = soup(response).select('.page-numbers a[aria-current="page"]')
    assert [a.get_text(" ", strip=True) for a in current] == ["Page 5"]


def test_the_widen_offer_reaches_the_nearest_match_and_finds_it(client):
    practitioner_near_zip(MEMPHIS, 38.2, name="Far Away", certifications=["art", "graston"])
    empty = client.get(f"/search/?zip={MEMPHIS}&radius=25&certification=art&certification=graston")
    assert "The nearest is 38.2 miles away" in text_of(empty, ".empty-state")

    wider = follow(client, empty, text="Search within 50 miles")

    search_kept(wider, zip=MEMPHIS, radius="50", certification=["art", "graston"])
    assert names(wider) == ["Far Away"]


@pytest.mark.parametrize("miles", [49.5, 99.0, 249.0])
def test_the_widen_offer_is_the_smallest_radius_on_the_list_that_reaches_the_nearest(
    client, settings, miles
):
    practitioner_near_zip(MEMPHIS, miles, name="Out There")
    empty = client.get(f"/search/?zip={MEMPHIS}&radius=5")
    offered = link(empty, selector=".empty-state a")
    radius = int(query_of(offered)["radius"][0])
    assert radius in settings.SEARCH_RADIUS_CHOICES_MI
    assert radius >= miles
    assert [r for r in settings.SEARCH_RADIUS_CHOICES_MI if miles <= r < radius] == []
    assert names(client.get(local_path(offered))) == ["Out There"]


def test_beyond_the_largest_radius_the_page_says_so_and_lists_the_nearest_however_far(client):
    # Memphis to Denver is about 870 miles: past the largest radius (250) and the API's 500.
    practitioner_at(39.7392, -104.9903, name="Denver Clinic", certifications=["art"])
    practitioner_at(47.6062, -122.3321, name="Seattle Clinic", certifications=["art"])
    practitioner_at(39.74, -104.99, name="Denver No ART")
    empty = client.get(f"/search/?zip={MEMPHIS}&radius=250&certification=art")
    said = text_of(empty, ".empty-state")
    assert "farther than our largest radius (250 miles)" in said
    assert "Search within" not in said

    nearest = follow(client, empty, text="Show the nearest practitioners by distance")

    search_kept(nearest, zip=MEMPHIS, radius="any", certification=["art"])
    assert names(nearest) == ["Denver Clinic", "Seattle Clinic"]
    heading = text_of(nearest, "#results-heading")
    assert "2 practitioners with Active Release Techniques (ART)" in heading
    assert "by distance from 38117 (Memphis, TN)" in heading
    assert "miles of" not in heading
    distances = [d.get_text(" ", strip=True) for d in soup(nearest).select(".distance")]
    assert distances[0].startswith("8") and distances[0].endswith("mi away")


def test_a_practitioner_across_the_pacific_is_still_the_nearest_match(client):
    practitioner_at(13.4443, 144.7937, name="Guam Clinic")  # Hagåtña, 7,000 miles away
    empty = client.get(f"/search/?zip={MEMPHIS}&radius=250")
    assert "The nearest is 7" in text_of(empty, ".empty-state")
    assert names(follow(client, empty, text="Show the nearest practitioners")) == ["Guam Clinic"]


def test_any_of_these_certifications_link_keeps_the_origin_and_finds_holders_of_either(client):
    practitioner_near_zip(MEMPHIS, 2, name="ART only", certifications=["art"])
    practitioner_near_zip(MEMPHIS, 3, name="Graston only", certifications=["graston"])
    empty = client.get(f"/search/?zip={MEMPHIS}&radius=10&certification=art&certification=graston")
    assert names(empty) == []

    either = follow(client, empty, text="Show practitioners with any of these certifications")

    search_kept(either, zip=MEMPHIS, radius="10", certification=["art", "graston"], match="any")
    assert names(either) == ["ART only", "Graston only"]


def test_a_search_without_origin_pages_by_name_with_its_filters(client):
    for i in range(25):
        practitioner_near_zip(MEMPHIS, 1, name=f"Name {i:02d}", certifications=["art"])
    practitioner_near_zip(MEMPHIS, 1, name="Name 00 without ART")
    first = client.get("/search/?certification=art")
    second = follow(client, first, text="Next")
    search_kept(second, certification=["art"])
    assert "anywhere, by name" in text_of(second, "#results-heading")
    assert names(second) == [f"Name {i:02d}" for i in range(20, 25)]


# --- The API's next and previous ------------------------------------------------------------

API = "/api/practitioners/"


@pytest.mark.parametrize(
    "origin",
    [{"zip": MEMPHIS}, {"near": "Memphis, TN"}, {"lat": "35.1124", "lon": "-89.9034"}],
    ids=["zip", "city", "lat-lon"],
)
def test_api_next_and_previous_keep_the_search_and_return_the_next_rows(client, origin):
    if "near" in origin:
        city = geo.origin_from_place("Memphis, TN")
        art_holders_north_of(city.latitude, city.longitude)
    else:
        art_holders_north_of(35.1124, -89.9034)
    first = client.get(API, {**origin, "radius": "250", "certification": "art"})
    body = first.json()
    assert body["count"] == 45 and body["previous"] is None

    second = client.get(local_path(body["next"])).json()

    assert query_of(body["next"]) == {
        **{k: [v] for k, v in origin.items()},
        "radius": ["250"],
        "certification": ["art"],
        "page": ["2"],
    }
    assert [r["name"] for r in second["results"]] == [f"P{i:02d}" for i in range(20, 40)]
    assert second["origin"] == body["origin"]
    third = client.get(local_path(second["next"])).json()
    assert [r["name"] for r in third["results"]] == [f"P{i:02d}" for i in range(40, 45)]
    assert third["next"] is None
    back = client.get(local_path(second["previous"])).json()
    assert back["results"] == body["results"]
    assert page_url(first).startswith("http://testserver/api/")


def test_api_radius_any_lists_the_nearest_however_far(client):
    practitioner_at(39.7392, -104.9903, name="Denver Clinic")
    body = client.get(API, {"zip": MEMPHIS, "radius": "any"}).json()
    assert [r["name"] for r in body["results"]] == ["Denver Clinic"]
    assert body["results"][0]["distance_mi"] > 800


# --- From a result to its profile and back ------------------------------------------------------


def test_a_profile_opened_from_the_results_links_back_to_the_same_page_of_the_same_search(client):
    centroid = geo.zip_centroid(MEMPHIS)
    art_holders_north_of(centroid.latitude, centroid.longitude)
    second = client.get(f"/search/?zip={MEMPHIS}&radius=250&certification=art&page=2")
    assert names(second)[0] == "P20"

    profile = follow(client, second, selector=".result-name a", text="P20")

    assert profile.status_code == 200
    assert text_of(profile, "h1").startswith("P20")
    back = follow(client, profile, text="Back to the results")
    search_kept(back, zip=MEMPHIS, radius="250", certification=["art"])
    assert names(back) == names(second)
    # The "Profile" link of the row goes to the same place.
    via_profile_link = follow(client, second, selector=".result-links a", text="Profile of P20")
    assert link(via_profile_link, text="Back to the results") == link(
        profile, text="Back to the results"
    )


def test_a_profile_opened_directly_has_no_back_link_and_the_same_canonical_url(client):
    practitioner = practitioner_near_zip(MEMPHIS, 1, name="Direct")
    plain = client.get(practitioner.get_absolute_url())
    assert "Back to the results" not in text_of(plain)
    with_back = client.get(practitioner.get_absolute_url(), {"back": "zip=38117"})
    canonical = soup(with_back).select_one('link[rel="canonical"]')["href"]
    assert canonical == f"http://testserver{practitioner.get_absolute_url()}"


@pytest.mark.parametrize(
    ("back", "expected"),
    [
        ("zip=38117&radius=25", "/search/?zip=38117&radius=25"),
        ("zip=38117&next=https://evil.example&q=", "/search/?zip=38117"),
        ("//evil.example/search/?zip=1", None),
        ("https://evil.example/?zip=38117", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_the_back_link_only_ever_goes_to_the_search_page_with_search_parameters(
    client, back, expected
):
    practitioner = practitioner_near_zip(MEMPHIS, 1, name="Direct")
    response = client.get(practitioner.get_absolute_url(), {"back": back})
    anchors = soup(response).select(".back-link a")
    if expected is None:
        assert anchors == []
    else:
        assert [a["href"] for a in anchors] == [expected]
