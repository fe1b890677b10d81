"""The heart: who is found near a ZIP, in which order, and what the person sees."""

import datetime as dt
import re

import pytest
from geopy.distance import geodesic

from practitioners.models import Practitioner
from practitioners.search import geo
from tests.browsing import follow
from tests.factories import (
    LocationFactory,
    PractitionerFactory,
    certification,
    practitioner_at,
    practitioner_near_zip,
    profession,
)

pytestmark = pytest.mark.django_db

MEMPHIS = "38117"
ART_AND_GRASTON = "/search/?zip=38117&radius=25&certification=art&certification=graston"


def result_names(response) -> list[str]:
    html = response.content.decode()
    return re.findall(r'class="result-name"[^>]*>.*?<a href="[^"]+"[^>]*>([^<]+)</a>', html, re.S)


def page_text(response) -> str:
    """What a person reads: tags stripped, whitespace collapsed, entities unescaped."""
    import html

    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(text))


def search(**params) -> list[str]:
    """Names the queryset finds, in order, for a search from a ZIP."""
    origin = geo.origin_from_zip(params.pop("zip", MEMPHIS))
    radius = params.pop("radius", 25)
    certs = [certification(slug) for slug in params.pop("certifications", [])]
    queryset = Practitioner.objects.published().holding(certs, params.pop("match", "all"))
    return list(queryset.near(origin, radius).values_list("name", flat=True))


def test_memphis_search_for_art_and_graston_finds_holders_of_both_nearest_first(client):
    practitioner_near_zip(MEMPHIS, 3, name="Both Near", certifications=["art", "graston"])
    practitioner_near_zip(MEMPHIS, 2, name="Only ART", certifications=["art"])
    practitioner_near_zip(
        MEMPHIS, 10, name="Levels Of Both", certifications=["art-spine", "graston-m1"]
    )
    practitioner_near_zip(MEMPHIS, 30, name="Too Far", certifications=["art", "graston"])

    response = client.get(ART_AND_GRASTON)

    assert response.status_code == 200
    assert result_names(response) == ["Both Near", "Levels Of Both"]
    html = response.content.decode()
    text = page_text(response)
    assert "2 practitioners with Active Release Techniques (ART) and Graston Technique" in text
    assert "within 25 miles of 38117 (Memphis, TN)" in text
    assert "3.0 mi" in html and "10.0 mi" in html
    both_near = Practitioner.objects.get(name="Both Near")
    # The name links to the profile (with the search to come back to, see test_search_links).
    profile = follow(client, response, selector=".result-name a", text="Both Near")
    assert profile.wsgi_request.path == both_near.get_absolute_url()
    assert profile.status_code == 200
    assert both_near.locations.get().address_line1 in html


def test_match_any_finds_holders_of_either_certification():
    practitioner_near_zip(MEMPHIS, 1, name="ART", certifications=["art"])
    practitioner_near_zip(MEMPHIS, 2, name="Graston", certifications=["graston"])
    practitioner_near_zip(MEMPHIS, 3, name="Both", certifications=["art", "graston"])
    practitioner_near_zip(MEMPHIS, 4, name="Neither", certifications=["faktr"])

    assert search(certifications=["art", "graston"], match="any") == ["ART", "Graston", "Both"]
    assert search(certifications=["art", "graston"]) == ["Both"]


def test_a_technique_is_satisfied_by_any_of_its_levels_but_a_level_only_by_itself():
    practitioner_near_zip(MEMPHIS, 1, name="M1", certifications=["graston-m1"])
    practitioner_near_zip(MEMPHIS, 2, name="Technique", certifications=["graston"])

    assert search(certifications=["graston"]) == ["M1", "Technique"]
    assert search(certifications=["graston-m1"]) == ["M1"]
    assert search(certifications=["graston-m2"]) == []


def test_expired_certification_does_not_satisfy_the_filter_but_one_expiring_today_does():
    today = dt.date.today()
    practitioner_near_zip(
        MEMPHIS, 1, name="Expired", certifications=["art"], expires_on=today - dt.timedelta(days=1)
    )
    practitioner_near_zip(MEMPHIS, 2, name="Today", certifications=["art"], expires_on=today)
    practitioner_near_zip(MEMPHIS, 3, name="Never", certifications=["art"])

    assert search(certifications=["art"]) == ["Today", "Never"]


@pytest.mark.parametrize("status", ["draft", "pending", "suspended"])
def test_unpublished_listings_are_hidden_from_search_api_and_profile(client, status):
    hidden = practitioner_near_zip(MEMPHIS, 1, name="Hidden", status=status, certifications=["art"])
    practitioner_near_zip(MEMPHIS, 2, name="Visible", certifications=["art"])

    assert search(certifications=["art"]) == ["Visible"]
    assert result_names(client.get("/search/?zip=38117&certification=art")) == ["Visible"]
    api = client.get("/api/practitioners/?zip=38117&certification=art").json()
    assert [r["name"] for r in api["results"]] == ["Visible"]
    assert client.get("/api/practitioners/?q=Hidden").json()["results"] == []
    assert client.get(hidden.get_absolute_url()).status_code == 404


def test_practitioner_with_several_clinics_appears_once_at_the_nearest(client):
    centroid = geo.zip_centroid(MEMPHIS)
    practitioner = practitioner_near_zip(MEMPHIS, 12, name="Two Clinics")
    LocationFactory(
        practitioner=practitioner,
        address_line1="1 Near St",
        latitude=centroid.latitude + 4 / 69.05,
        longitude=centroid.longitude,
    )
    LocationFactory(
        practitioner=practitioner,
        address_line1="9 Far Rd",
        latitude=centroid.latitude + 20 / 69.05,
        longitude=centroid.longitude,
    )

    response = client.get("/search/?zip=38117&radius=25")

    assert result_names(response) == ["Two Clinics"]
    html = response.content.decode()
    assert "1 Near St" in html and "9 Far Rd" not in html
    assert "4.0 mi" in html


@pytest.mark.parametrize(
    ("zip_code", "point"),
    [
        ("38117", (35.40, -89.60)),
        ("99501", (62.5, -146.0)),
        ("96813", (21.9, -159.4)),
        ("02139", (42.0, -71.0)),
    ],
)
def test_distance_computed_by_the_database_matches_geopy_geodesic(zip_code, point):
    practitioner_at(*point, name="Somewhere")
    origin = geo.origin_from_zip(zip_code)
    found = Practitioner.objects.published().near(origin, 500).get()

    expected = geodesic((origin.latitude, origin.longitude), point).miles
    assert found.distance_mi == pytest.approx(expected, rel=0.005)


def test_results_tie_on_distance_are_ordered_by_name():
    for name in ["Cora", "Abe", "Bea"]:
        practitioner_near_zip(MEMPHIS, 5, name=name)
    assert search() == ["Abe", "Bea", "Cora"]


def test_radius_includes_inside_and_excludes_just_outside():
    practitioner_near_zip(MEMPHIS, 9.9, name="Inside")
    practitioner_near_zip(MEMPHIS, 10.1, name="Outside")
    assert search(radius=10) == ["Inside"]


def test_empty_result_says_how_far_the_nearest_match_is_and_links_a_wider_search(client):
    practitioner_near_zip(MEMPHIS, 38.2, name="Far Away", certifications=["art", "graston"])

    response = client.get(ART_AND_GRASTON)

    text = page_text(response)
    assert "No practitioner" in text
    assert "The nearest is 38.2 miles away" in text
    assert "radius=50" in response.content.decode()
    assert result_names(client.get(ART_AND_GRASTON.replace("radius=25", "radius=50"))) == [
        "Far Away"
    ]


def test_empty_result_with_no_match_anywhere_says_so(client):
    text = page_text(client.get("/search/?zip=38117&certification=mckenzie-mdt"))
    assert "No published practitioner matches these filters anywhere yet" in text


def test_profession_new_patients_telehealth_and_name_filters_narrow_the_results():
    practitioner_near_zip(MEMPHIS, 1, name="Dr Chiro", profession=profession("chiropractor"))
    practitioner_near_zip(
        MEMPHIS, 2, name="PT Tele", profession=profession("physical-therapist"), telehealth=True
    )
    practitioner_near_zip(MEMPHIS, 3, name="Full Chiro", accepting_new_patients=False)
    from practitioners.search.filters import PractitionerFilter

    def names(query: str) -> list[str]:
        from django.http import QueryDict

        from practitioners.search.query import search_practitioners

        filterset = PractitionerFilter(QueryDict(f"zip=38117&{query}"))
        assert filterset.is_valid(), filterset.errors
        results = search_practitioners(filterset.params, page=1)
        return [p.name for p in results.page.object_list]

    assert names("profession=physical-therapist") == ["PT Tele"]
    assert names("telehealth=true") == ["PT Tele"]
    assert names("accepting_new_patients=false") == ["Full Chiro"]
    assert names("accepting_new_patients=true") == ["Dr Chiro", "PT Tele"]
    assert names("q=chiro") == ["Dr Chiro", "Full Chiro"]


def test_search_from_a_city_or_coordinates_finds_the_same_practitioner(client):
    practitioner_near_zip(MEMPHIS, 1, name="Memphis Clinic")
    assert result_names(client.get("/search/?near=Memphis%2C+TN&radius=25")) == ["Memphis Clinic"]
    assert result_names(client.get("/search/?lat=35.11&lon=-89.90&radius=10")) == ["Memphis Clinic"]


def test_results_are_paged_twenty_at_a_time_with_links_that_keep_the_search(client):
    for i in range(23):
        practitioner_near_zip(MEMPHIS, 0.1 * (i + 1), name=f"P{i:02d}", certifications=["art"])

    first = client.get("/search/?zip=38117&certification=art")
    second = client.get("/search/?zip=38117&certification=art&page=2")

    assert len(result_names(first)) == 20
    assert result_names(second) == ["P20", "P21", "P22"]
    assert "page=2" in first.content.decode() and "certification=art" in first.content.decode()
    assert "23 practitioners" in page_text(first)


def test_search_page_runs_the_same_number_of_queries_for_3_or_20_results(
    client, django_assert_max_num_queries
):
    def queries_for_page() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(ART_AND_GRASTON).status_code == 200
        return len(captured)

    for i in range(3):
        practitioner_near_zip(MEMPHIS, i + 1, certifications=["art-spine", "graston"])
    few = queries_for_page()
    for i in range(20):
        practitioner_near_zip(MEMPHIS, i + 5, certifications=["art", "graston-m2", "faktr"])
    many = queries_for_page()

    assert many == few
    # choices, count (with the circle sizing), page with its rows, certificates
    with django_assert_max_num_queries(4):
        client.get(ART_AND_GRASTON)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/search/?q=P", "P00"),
        ("/api/practitioners/?q=P", "P00"),
        ("/api/practitioners/?zip=38117&certification=art", "P00"),
        (
            "/search/?zip=38117&profession=chiropractor&telehealth=false"
            "&accepting_new_patients=true",
            "P00",
        ),
        # none near: the nearest is N miles away
        ("/search/?zip=99501&radius=5&certification=art", "The nearest is"),
        ("/api/practitioners/?zip=99501&radius=5&certification=art", "nearest_match_distance"),
    ],
)
def test_a_first_page_runs_at_most_four_statements(
    client, url, shown, django_assert_max_num_queries
):
    for i in range(25):
        practitioner_near_zip(
            MEMPHIS, i + 1, name=f"P{i:02d}", certifications=["art", "graston-m1"]
        )

    with django_assert_max_num_queries(4):
        response = client.get(url)

    assert response.status_code == 200
    assert shown in response.content.decode()


def test_count_is_capped_and_the_page_says_more_than(client, settings):
    settings.SEARCH_COUNT_CAP = 5
    for i in range(7):
        practitioner_near_zip(MEMPHIS, i + 1)

    text = page_text(client.get("/search/?zip=38117"))

    assert "More than 5 practitioners" in text
    assert "Showing the nearest 5" in text
    assert len(result_names(client.get("/search/?zip=38117"))) == 5


def test_practitioner_without_coordinates_is_not_found_by_distance():
    practitioner = PractitionerFactory(name="No Pin")
    LocationFactory(practitioner=practitioner, latitude=None, longitude=None)
    practitioner_near_zip(MEMPHIS, 1, name="Pinned")
    assert search() == ["Pinned"]
