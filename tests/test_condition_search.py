"""Searching by what hurts: suggestions that forgive typos, the condition filter on the page and
the API, and the no-JavaScript fallback that resolves free text on the server."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import browsing
from tests.factories import practitioner_near_zip

pytestmark = pytest.mark.django_db


def suggested(client, text: str) -> list[str]:
    response = client.get("/api/conditions/", {"q": text})
    assert response.status_code == 200
    return [row["slug"] for row in response.json()["results"]]


def result_names(response) -> list[str]:
    return [a.get_text() for a in browsing.soup(response).select(".result-name a")]


@pytest.fixture
def near_38117():
    """ART, Graston, ART+FAKTR, FAKTR only and nothing, 1 to 5 miles from 38117."""
    return {
        "art": practitioner_near_zip("38117", 1, name="Ann Art", certifications=["art-spine"]),
        "graston": practitioner_near_zip(
            "38117", 2, name="Gus Graston", certifications=["graston"]
        ),
        "art_faktr": practitioner_near_zip(
            "38117", 3, name="Fay Both", certifications=["art", "faktr"]
        ),
        "faktr": practitioner_near_zip("38117", 4, name="Fred Faktr", certifications=["faktr"]),
        "none": practitioner_near_zip("38117", 5, name="Ned None"),
    }


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("pirformis", "piriformis-syndrome"),
        ("planter fasciitis", "plantar-fasciitis"),
        ("elbow tennis", "lateral-epicondylitis"),
        ("tenis elbow", "lateral-epicondylitis"),
        ("heel pain", "plantar-fasciitis"),
        ("golfers elbow", "medial-epicondylitis"),
        ("Golfer's Elbow", "medial-epicondylitis"),
        ("pain in my buttock down my leg", "piriformis-syndrome"),
        ("plant", "plantar-fasciitis"),
        ("carpel tunnel", "carpal-tunnel-syndrome"),
    ],
)
def test_suggestions_forgive_typos_word_order_and_know_the_synonyms(client, typed, first):
    assert suggested(client, typed)[0] == first


def test_suggestions_say_which_synonym_matched_and_link_the_condition_page(client):
    [row, *_] = client.get("/api/conditions/?q=tennis elbow").json()["results"]
    assert row == {
        "slug": "lateral-epicondylitis",
        "name": "Lateral epicondylitis",
        "matched": "tennis elbow",
        "url": "http://testserver/conditions/lateral-epicondylitis/",
    }
    assert client.get(browsing.local_path(row["url"])).status_code == 200


def test_nothing_is_suggested_for_a_letter_or_for_nonsense_and_a_long_query_is_a_400(client):
    assert suggested(client, "p") == []
    assert suggested(client, "zzqx") == []
    response = client.get("/api/conditions/", {"q": "x" * 101})
    assert response.status_code == 400
    assert response.json() == {"q": ["Type at most 100 characters."]}


def test_the_suggestions_and_the_condition_parameter_are_in_the_api_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/conditions/" in schema["paths"]
    parameters = schema["paths"]["/api/practitioners/"]["get"]["parameters"]
    assert "condition" in {parameter["name"] for parameter in parameters}


def test_a_condition_search_finds_what_the_certification_search_it_expands_to_finds(
    client, near_38117
):
    by_condition = client.get("/search/?zip=38117&condition=plantar-fasciitis")
    by_certification = client.get(
        "/search/?zip=38117&certification=art&certification=graston&match=any"
    )
    assert result_names(by_condition) == result_names(by_certification)
    assert result_names(by_condition) == ["Ann Art", "Gus Graston", "Fay Both"]
    api = client.get("/api/practitioners/?zip=38117&condition=plantar-fasciitis").json()
    same = client.get(
        "/api/practitioners/?zip=38117&certification=art&certification=graston&match=any"
    ).json()
    assert [r["slug"] for r in api["results"]] == [r["slug"] for r in same["results"]]
    assert api["count"] == 3


def test_the_results_header_says_which_techniques_and_for_what(client, near_38117):
    response = client.get("/search/?zip=38117&condition=plantar-fasciitis")
    heading = browsing.text_of(response, "#results-heading")
    assert heading == (
        "3 practitioners within 25 miles of 38117 (Memphis, TN) who list ART or Graston Technique "
        "— used for plantar fasciitis"
    )
    assert "does not give medical advice" in browsing.text_of(response)
    about = browsing.follow(client, response, text="Plantar fasciitis")
    assert about.status_code == 200


def test_ticked_certifications_combine_with_the_condition_by_the_match_rule(client, near_38117):
    both = client.get("/search/?zip=38117&condition=plantar-fasciitis&certification=faktr")
    assert result_names(both) == ["Fay Both"]  # (ART or Graston) and FAKTR
    either = client.get(
        "/search/?zip=38117&condition=plantar-fasciitis&certification=faktr&match=any"
    )
    assert result_names(either) == ["Ann Art", "Gus Graston", "Fay Both", "Fred Faktr"]


def test_free_text_is_resolved_on_the_server_without_javascript(client, near_38117):
    home = client.get("/")
    results = browsing.submit(
        client,
        browsing.form(home, "form.search-form").set("zip", "38117").set("condition", "tenis elbow"),
        follow=True,
    )
    assert results.status_code == 200
    assert "used for lateral epicondylitis" in browsing.text_of(results, "#results-heading")
    assert result_names(results) == ["Ann Art", "Gus Graston", "Fay Both"]


def test_ambiguous_text_lists_the_conditions_it_could_mean_to_pick_from(client, near_38117):
    response = client.get("/search/?zip=38117&condition=elbow")
    assert response.status_code == 400
    assert '"elbow" could be several conditions: pick one.' in browsing.text_of(response)
    candidates = browsing.links(response, ".condition-candidates a")
    assert len(candidates) == 2
    picked = browsing.follow(client, response, text="Medial epicondylitis")
    assert picked.status_code == 200
    assert "used for medial epicondylitis" in browsing.text_of(picked, "#results-heading")
    assert result_names(picked) == ["Gus Graston"]
    assert browsing.form(picked, "form.search-form").value("zip") == "38117"


def test_an_unknown_condition_is_a_400_with_a_message_on_the_page_and_the_api(client):
    page = client.get("/search/?zip=38117&condition=housemaids-knees-and-elbows")
    assert page.status_code == 400
    assert 'We do not know a condition called "housemaids-knees-and-elbows"' in (
        browsing.text_of(page, "#condition-error")
    )
    api = client.get("/api/practitioners/?zip=38117&condition=zzqx")
    assert api.status_code == 400
    assert api.json()["condition"][0].startswith('We do not know a condition called "zzqx"')


def test_the_zip_box_on_a_condition_page_runs_the_condition_search(client, near_38117):
    page = client.get("/conditions/plantar-fasciitis/")
    results = browsing.submit(client, browsing.form(page, ".zip-box").set("zip", "38117"))
    assert "used for plantar fasciitis" in browsing.text_of(results, "#results-heading")


def test_a_condition_search_runs_a_fixed_number_of_queries(
    client, near_38117, django_assert_max_num_queries
):
    for miles in range(6, 30):
        practitioner_near_zip("38117", miles / 5, certifications=["graston"])
    with django_assert_max_num_queries(10):
        response = client.get("/search/?zip=38117&condition=plantar-fasciitis")
    assert response.status_code == 200


def test_a_condition_search_costs_one_look_up_more_than_the_certification_search(
    client, near_38117
):
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    for page in ("/api/practitioners/", "/search/"):
        by_condition = queries(f"{page}?zip=38117&condition=plantar-fasciitis")
        expanded = queries(f"{page}?zip=38117&certification=art&certification=graston&match=any")
        assert by_condition == expanded + 1, page  # the condition and its techniques, at once


def test_tmj_disorders_is_found_by_its_words_and_says_no_technique_is_listed_for_it_yet(client):
    suggested = client.get("/api/conditions/?q=jaw pain").json()
    assert suggested["results"][0]["slug"] == "tmj-disorders", suggested
    page = client.get("/conditions/tmj-disorders/")
    assert page.status_code == 200
    assert "No technique is listed for this condition yet." in browsing.text_of(page, "main")
    assert "M26.6" in browsing.text_of(page, ".codes")
    assert not browsing.soup(page).select(".zip-box")  # nothing to search for
    search = client.get("/search/?zip=38117&condition=jaw+pain")
    assert search.status_code == 400
    assert "No technique is listed for TMJ disorders yet." in (
        browsing.text_of(search, "#condition-error")
    )
