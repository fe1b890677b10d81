"""The JSON API: same search as the page, a documented shape, 400s keyed by parameter."""

import pytest

from tests.factories import LocationFactory, PractitionerFactory, practitioner_near_zip

pytestmark = pytest.mark.django_db

API = "/api/practitioners/"


def test_api_returns_the_memphis_search_with_origin_distance_location_and_url(client):
    practitioner = practitioner_near_zip(
        "38117", 3, name="Both", credentials="DC, CCSP", certifications=["art-spine", "graston"]
    )
    practitioner_near_zip("38117", 1, name="ART only", certifications=["art"])

    body = client.get(API, {"zip": "38117", "certification": ["art", "graston"]}).json()

    assert body["count"] == 1
    assert body["next"] is None and body["previous"] is None
    assert body["origin"] == {
        "zip": "38117",
        "city": "Memphis",
        "state": "TN",
        "latitude": pytest.approx(35.1124),
        "longitude": pytest.approx(-89.9034),
    }
    [result] = body["results"]
    assert result["name"] == "Both"
    assert result["credentials"] == "DC, CCSP"
    assert result["profession"] == "chiropractor"
    assert sorted(result["certifications"]) == ["art-spine", "graston"]
    assert result["distance_mi"] == 3.0
    assert result["npi"] is None
    assert result["location"]["postal_code"] == "38117"
    assert result["location"]["precision"] == "provided"
    assert result["url"] == f"http://testserver{practitioner.get_absolute_url()}"


def test_api_without_origin_lists_by_name_with_null_distance(client):
    practitioner_near_zip("38117", 3, name="Zed")
    practitioner_near_zip("10001", 3, name="Amy")

    body = client.get(API).json()

    assert [r["name"] for r in body["results"]] == ["Amy", "Zed"]
    assert body["origin"] is None
    assert all(r["distance_mi"] is None for r in body["results"])
    assert body["results"][0]["location"]["postal_code"] == "10001"


def test_api_pages_with_page_size_and_next_links_that_keep_the_search(client):
    for i in range(5):
        practitioner_near_zip("38117", i + 1, certifications=["art"])

    first = client.get(API, {"zip": "38117", "certification": "art", "page_size": 2}).json()
    last = client.get(
        API, {"zip": "38117", "certification": "art", "page_size": 2, "page": 3}
    ).json()

    assert first["count"] == 5 and len(first["results"]) == 2
    assert "certification=art" in first["next"] and "page=2" in first["next"]
    assert len(last["results"]) == 1 and last["next"] is None


def test_api_empty_result_reports_the_nearest_match_distance(client):
    practitioner_near_zip("38117", 38.2, certifications=["art"])
    body = client.get(API, {"zip": "38117", "certification": "art"}).json()
    assert body["count"] == 0
    assert body["nearest_match_distance_mi"] == 38.2


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"zip": "3811"}, "zip", "5-digit ZIP"),
        ({"zip": "00000"}, "zip", "00000 was not found"),
        ({"zip": "38117", "radius": "0"}, "radius", "at least 1 mile"),
        ({"zip": "38117", "radius": "501"}, "radius", "at most 500 miles"),
        ({"zip": "38117", "radius": "far"}, "radius", "number"),
        (
            {"zip": "38117", "certification": "reiki"},
            "certification",
            "Unknown certification reiki",
        ),
        ({"zip": "38117", "match": "some"}, "match", "all or any"),
        ({"zip": "38117", "telehealth": "yes"}, "telehealth", "true or false"),
        (
            {"zip": "38117", "accepting_new_patients": "1"},
            "accepting_new_patients",
            "true or false",
        ),
        ({"zip": "38117", "profession": "wizard"}, "profession", "valid choice"),
        ({"lat": "35.1"}, "lon", "longitude"),
        ({"lat": "95", "lon": "0"}, "lat", "less than or equal to 90"),
        ({"near": "Atlantis, ZZ"}, "near", "could not find"),
        ({"zip": "38117", "page_size": "101"}, "page_size", "1 to 100"),
    ],
)
def test_api_answers_bad_input_with_400_keyed_by_parameter(client, params, field, message):
    response = client.get(API, params)
    assert response.status_code == 400
    body = response.json()
    assert field in body
    assert message in " ".join(body[field])


def test_api_page_past_the_end_is_404_not_500(client):
    practitioner_near_zip("38117", 1)
    response = client.get(API, {"zip": "38117", "page": "9"})
    assert response.status_code == 404
    assert client.get(API, {"zip": "38117", "page": "x"}).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "zip=38117&zip=10001",
        "zip=&radius=&certification=&match=&profession=&telehealth=&q=",
        "zip=" + "9" * 100_000,
        "q=" + "é" * 500,
        "zip=%F0%9F%98%80&near=%E2%80%AE&q=%00",
        "certification=art%00&radius=NaN&lat=inf&lon=-inf",
        "radius=1e309&lat=1e-400&lon=0x10",
        "near=,&near=%2C%2C%2C&q=%27%3B+DROP+TABLE+x%3B--",
        "page=-1&page_size=0",
        "zip[]=1&certification[]=art&%FF=%FE",
    ],
)
def test_no_query_string_makes_the_page_or_api_fail_with_a_500(client, query):
    practitioner_near_zip("38117", 1)
    for path in (API, "/search/"):
        response = client.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.status_code)


def test_repeated_zip_uses_the_last_value(client):
    practitioner_near_zip("10001", 1, name="Manhattan")
    body = client.get(f"{API}?zip=38117&zip=10001&radius=5").json()
    assert [r["name"] for r in body["results"]] == ["Manhattan"]


def test_api_runs_the_same_number_of_queries_for_2_or_40_results(
    client, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get(API, {"zip": "38117", "certification": "art", "page_size": 100})
        return len(captured)

    for i in range(2):
        LocationFactory(practitioner=practitioner_near_zip("38117", i, certifications=["art"]))
    few = count()
    for i in range(38):
        practitioner_near_zip("38117", i, certifications=["art-spine", "graston"])
    assert count() == few


def test_openapi_schema_documents_the_search_parameters(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for parameter in ("zip", "radius", "certification", "match", "page_size", "distance_mi"):
        assert parameter in text


def test_healthz_says_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("params", [{"zip": "38117", "radius": 50}, {}])
def test_api_results_read_exactly_as_drf_would_serialise_them(client, monkeypatch, params):
    from rest_framework import serializers

    from practitioners import api

    practitioner_near_zip("38117", 1, name="Full", npi="1234567893", certifications=["art"])
    practitioner_near_zip("38117", 2, name="No profession", profession=None, credentials="")
    unlocated = practitioner_near_zip("38117", 3, name="Blank clinic", telehealth=True)
    unlocated.locations.update(name="", phone="", address_line2="")
    LocationFactory(practitioner=PractitionerFactory(), latitude=None, longitude=None, name="")
    PractitionerFactory(name="No clinic")

    fast = client.get(API, params).json()
    for serializer in (api.PractitionerResultSerializer, api.LocationSerializer):
        monkeypatch.setattr(
            serializer, "to_representation", serializers.ModelSerializer.to_representation
        )
    generic = client.get(API, params).json()

    assert len(fast["results"]) == (3 if params else 5)
    assert fast == generic
