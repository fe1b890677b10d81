"""The search form as people fill it in: the city box, ZIP and city together, clean URLs, and
errors that name and mark their field."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.browsing import follow, form, local_path, soup, submit, text_of
from tests.factories import practitioner_near_zip

pytestmark = pytest.mark.django_db

MEMPHIS = "38117"


def names(response) -> list[str]:
    return [a.get_text(strip=True) for a in soup(response).select(".result-name a")]


def search_from_home(client, **typed: str | list[str]):
    """Type into the home page's form and press Search, as a person without JavaScript does:
    the browser sends every field; the redirect to the clean URL is followed."""
    filled = form(client.get("/"), "form.search-form")
    for name, value in typed.items():
        filled.set(name, value)
    return submit(client, filled, button="Search", follow=True)


@pytest.fixture
def memphis_clinic():
    return practitioner_near_zip(MEMPHIS, 1, name="Memphis Clinic", certifications=["art"])


# --- The city box -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["memphis tn", "Memphis Tennessee", "Memphis, TN", "MEMPHIS, tennessee"]
)
def test_the_city_box_finds_memphis_however_it_is_typed(client, memphis_clinic, typed):
    response = search_from_home(client, near=typed)
    assert response.status_code == 200
    assert names(response) == ["Memphis Clinic"]
    assert "within 25 miles of Memphis, TN" in text_of(response, "#results-heading")
    assert form(response, "form.search-form").value("near") == typed


def test_a_city_several_states_have_lists_them_and_each_choice_keeps_the_search(
    client, memphis_clinic
):
    response = search_from_home(client, near="Memphis", radius="50", certification="art")

    assert response.status_code == 400
    near = soup(response).select_one("#id_near")
    assert near["aria-invalid"] == "true" and near["aria-describedby"] == "near-error"
    assert "There is a Memphis in 7 states" in text_of(response, "#near-error")
    choices = [a.get_text(strip=True) for a in soup(response).select(".place-choices a")]
    assert choices[0] == "Memphis, Tennessee" and "Memphis, Texas" in choices
    assert len(choices) == 7

    chosen = follow(client, response, text="Memphis, Tennessee")

    assert chosen.status_code == 200
    assert names(chosen) == ["Memphis Clinic"]
    kept = form(chosen, "form.search-form")
    assert (kept.value("near"), kept.value("radius"), kept.value("certification")) == (
        "Memphis, TN",
        "50",
        "art",
    )
    assert "within 50 miles of Memphis, TN" in text_of(chosen, "#results-heading")


def test_a_city_only_one_state_has_is_found_by_its_name_alone(client):
    practitioner_near_zip("60601", 1, name="Chicago Clinic")
    response = search_from_home(client, near="chicago")
    assert names(response) == ["Chicago Clinic"]
    assert "of Chicago, IL" in text_of(response, "#results-heading")


def test_a_zip_typed_in_the_city_box_is_used_as_a_zip(client, memphis_clinic):
    response = search_from_home(client, near="38117")
    assert names(response) == ["Memphis Clinic"]
    assert "within 25 miles of 38117 (Memphis, TN)" in text_of(response, "#results-heading")
    assert text_of(response, "#origin-used") == ""


def test_with_a_zip_and_a_city_the_page_says_the_zip_was_used(client, memphis_clinic):
    response = search_from_home(client, zip=MEMPHIS, near="Chicago, IL")
    assert names(response) == ["Memphis Clinic"]
    said = text_of(response, "#origin-used")
    assert "Searched from the ZIP code 38117" in said
    assert 'The city box ("Chicago, IL") was not used' in said


def test_a_city_that_does_not_exist_says_so_next_to_the_field(client):
    response = search_from_home(client, near="Nowhereville, TN")
    assert response.status_code == 400
    assert 'could not find "Nowhereville, TN" in Tennessee' in text_of(response, "#near-error")
    assert soup(response).select_one("#id_near")["aria-invalid"] == "true"


def test_the_api_reads_the_city_box_the_same_way(client, memphis_clinic):
    body = client.get("/api/practitioners/", {"near": "memphis tennessee"}).json()
    assert [r["name"] for r in body["results"]] == ["Memphis Clinic"]
    refused = client.get("/api/practitioners/", {"near": "Memphis"})
    assert refused.status_code == 400
    assert "There is a Memphis in 7 states" in refused.json()["near"][0]


# --- Clean URLs ---------------------------------------------------------------------------------


def test_the_url_of_a_search_carries_only_what_was_filled_in(client, memphis_clinic):
    response = search_from_home(client, zip=MEMPHIS)

    [(redirected_to, status)] = response.redirect_chain
    assert status == 302
    assert parse_qsl(urlsplit(redirected_to).query) == [("zip", MEMPHIS), ("radius", "25")]
    assert names(response) == ["Memphis Clinic"]


def test_filled_in_filters_stay_in_the_url(client, memphis_clinic):
    response = search_from_home(client, zip=MEMPHIS, certification="art", q="clinic", radius="10")
    [(redirected_to, _)] = response.redirect_chain
    assert sorted(parse_qsl(urlsplit(redirected_to).query)) == [
        ("certification", "art"),
        ("match", "all"),
        ("q", "clinic"),
        ("radius", "10"),
        ("zip", MEMPHIS),
    ]
    assert names(response) == ["Memphis Clinic"]


def test_a_clean_url_is_answered_without_a_redirect(client, memphis_clinic):
    response = client.get(f"/search/?zip={MEMPHIS}&radius=25")
    assert response.status_code == 200 and names(response) == ["Memphis Clinic"]


def test_the_links_of_a_results_page_are_clean_too(client):
    for i in range(25):
        practitioner_near_zip(MEMPHIS, 0.1 * (i + 1))
    response = search_from_home(client, zip=MEMPHIS)
    next_page = soup(response).select_one('a[rel="next"]')["href"]
    assert parse_qsl(urlsplit(next_page).query) == [
        ("zip", MEMPHIS),
        ("radius", "25"),
        ("page", "2"),
    ]
    assert client.get(local_path(f"http://testserver/search/{next_page}")).status_code == 200


# --- Every error names and marks its field ----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "label", "message"),
    [
        ("zip=38117&certification=art&match=whatever", "id_match_all", "Practitioner must hold",
         "Use all or any."),
        ("zip=38117&match=whatever", "id_match_all", "Practitioner must hold", "Use all or any."),
        ("zip=3811", "id_zip", "ZIP code", "Enter a 5-digit ZIP code"),
        ("near=Memphis%2C+Narnia", "id_near", "City, state", '"Narnia" is not a US state'),
        ("zip=38117&radius=900", "id_radius", "Within", "at most 500 miles"),
        ("zip=38117&certification=reiki", "id_certification_0", "Certified in",
         "Unknown certification reiki"),
        ("zip=38117&profession=astrologer", "id_profession", "Profession", "Select a valid"),
        ("zip=38117&telehealth=maybe", "id_telehealth", "Offers telehealth", "Use true or false"),
        ("zip=38117&accepting_new_patients=maybe", "id_accepting_new_patients",
         "Accepting new patients", "Use true or false"),
        ("lat=35.1", "location-error", "Your location", "Give a longitude with the latitude"),
    ],
)  # fmt: skip
def test_every_error_is_named_in_the_summary_linked_to_its_field_and_marked_there(
    client, query, field, label, message
):
    response = client.get(f"/search/?{query}")

    assert response.status_code == 400
    page = soup(response)
    summary = page.select("#search-errors li")
    assert len(summary) == 1, [li.get_text() for li in summary]
    assert summary[0].a["href"] == f"#{field}"
    assert summary[0].a.get_text() == label
    assert message in summary[0].get_text()
    marked = page.select_one(f"#{field}")
    assert marked is not None, f"the summary links to #{field}, which is not on the page"
    if field == "location-error":
        assert message in marked.get_text()
        return
    # The field (or the group it belongs to) is marked invalid and described by the message.
    holder = (
        marked
        if marked.has_attr("aria-invalid")
        else marked.find_parent(attrs={"aria-invalid": "true"})
    )
    assert holder is not None and holder["aria-invalid"] == "true"
    described = page.select_one(f"#{holder['aria-describedby'].split()[0]}")
    assert message in described.get_text()


def test_match_whatever_keeps_the_typed_value_in_the_message(client):
    response = client.get("/search/?zip=38117&certification=art&match=whatever")
    assert '"whatever" is not one of them' in text_of(response, "#match-error")
