"""Pages people arrive on from a search engine: conditions, techniques and places, with their
titles, canonical URLs, breadcrumbs and link previews."""

import datetime as dt
import json
import re

import pytest

from practitioners.models import Condition, Practitioner, PractitionerCertification
from tests import browsing
from tests.factories import certification, practitioner_at, practitioner_near_zip

pytestmark = pytest.mark.django_db


def title_of(response) -> str:
    return browsing.soup(response).title.get_text().strip()


def description_of(response) -> str:
    return browsing.soup(response).select_one('meta[name="description"]')["content"]


def canonical_of(response) -> str:
    [link] = browsing.soup(response).select('link[rel="canonical"]')
    return link["href"]


def json_ld(response) -> list[dict]:
    """Every JSON-LD block, after checking each carries the nonce the CSP header names."""
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])[1]
    blocks = browsing.soup(response).select('script[type="application/ld+json"]')
    assert all(block["nonce"] == nonce for block in blocks)
    return [json.loads(block.string) for block in blocks]


def breadcrumbs(response) -> list[tuple[str, str]]:
    [data] = [d for d in json_ld(response) if d["@type"] == "BreadcrumbList"]
    return [(item["name"], item["item"]) for item in data["itemListElement"]]


@pytest.fixture
def memphis():
    """ART (a level) 1 mile from the centre of Memphis, Graston 3 miles, nothing 2 miles."""
    near = practitioner_near_zip("38117", 1, name="Ann Art", certifications=["art-spine"])
    middle = practitioner_near_zip("38117", 2, name="Ned None")
    far = practitioner_near_zip("38117", 3, name="Gus Graston", certifications=["graston-m1"])
    return near, middle, far


def test_the_conditions_page_links_every_condition_and_says_it_gives_no_medical_advice(client):
    response = client.get("/conditions/")
    assert response.status_code == 200
    assert "does not give medical advice" in browsing.text_of(response)
    urls = browsing.links(response, ".condition-list a")
    assert len(urls) == Condition.objects.count()
    for url in urls:
        page = client.get(browsing.local_path(url))
        assert page.status_code == 200
        assert "does not give medical advice" in browsing.text_of(page)


def test_a_condition_page_says_what_it_is_which_techniques_and_their_sources(client):
    response = client.get("/conditions/plantar-fasciitis/")
    text = browsing.text_of(response, "main")
    assert "Pain under the heel" in text
    assert "Also called: heel pain" in text
    assert "ICD-10-CM: M72.2" in text
    assert "Graston Technique lists plantar fasciitis among the conditions" in text
    sources = browsing.links(response, ".condition-techniques a[rel=noopener]")
    assert "https://www.activerelease.com/what-is-art" in sources
    assert "https://grastontechnique.com/patients/" in sources
    assert title_of(response).startswith(
        "Plantar fasciitis: practitioners who list Active Release Techniques (ART) or "
        "Graston Technique for it"
    )
    assert breadcrumbs(response) == [
        ("Home", "http://testserver/"),
        ("Conditions", "http://testserver/conditions/"),
        ("Plantar fasciitis", "http://testserver/conditions/plantar-fasciitis/"),
    ]


def test_the_zip_box_on_a_condition_page_finds_practitioners_with_any_of_its_techniques(
    client, memphis
):
    page = client.get("/conditions/plantar-fasciitis/")
    results = browsing.submit(client, browsing.form(page, ".zip-box").set("zip", "38117"))
    assert results.status_code == 200
    names = [a.get_text() for a in browsing.soup(results).select(".result-name a")]
    assert names == ["Ann Art", "Gus Graston"]


def test_an_unknown_condition_is_404(client):
    assert client.get("/conditions/housemaids-knee/").status_code == 404


def test_a_technique_page_shows_its_levels_and_the_conditions_listed_for_it(client):
    response = client.get("/techniques/graston/")
    assert response.status_code == 200
    text = browsing.text_of(response, "main")
    assert "Graston Technique M2 (Advanced)" in text
    assert "Certified by Graston Technique, LLC" in text
    condition_page = browsing.follow(client, response, text="Medial epicondylitis")
    assert condition_page.status_code == 200
    search = browsing.follow(client, response, text="Find practitioners certified in")
    assert search.status_code == 200


def test_a_level_s_page_is_its_technique_s_and_an_unknown_technique_is_404(client):
    response = client.get("/techniques/graston-m2/")
    assert response.status_code == 301
    assert response["Location"] == "/techniques/graston/"
    assert client.get("/techniques/reiki/").status_code == 404


def test_a_city_with_a_published_practitioner_lists_them_nearest_its_centre_first(client, memphis):
    response = client.get("/tn/memphis/")
    assert response.status_code == 200
    names = [a.get_text() for a in browsing.soup(response).select(".result-name a")]
    assert names == ["Ann Art", "Ned None", "Gus Graston"]
    assert title_of(response) == (
        "Manual therapy practitioners in Memphis, TN · Practitioner Locator"
    )
    assert breadcrumbs(response) == [
        ("Home", "http://testserver/"),
        ("Memphis, TN", "http://testserver/tn/memphis/"),
    ]
    by_technique = browsing.links(response, ".place-techniques a")
    assert by_technique == [
        "http://testserver/tn/memphis/art/",
        "http://testserver/tn/memphis/graston/",
    ]


def test_a_city_and_technique_page_lists_only_its_holders_and_levels_count(client, memphis):
    response = client.get("/tn/memphis/art/")
    assert response.status_code == 200
    names = [a.get_text() for a in browsing.soup(response).select(".result-name a")]
    assert names == ["Ann Art"]
    assert title_of(response).startswith("Active Release Techniques (ART) in Memphis, TN")
    assert [name for name, _ in breadcrumbs(response)] == [
        "Home",
        "Memphis, TN",
        "Active Release Techniques (ART)",
    ]


def test_places_without_a_published_practitioner_have_no_page(client, memphis):
    practitioner_at(36.16, -86.78, name="Draft Nash", status=Practitioner.Status.DRAFT)
    assert client.get("/tn/nashville/").status_code == 404  # only a draft there
    assert client.get("/tn/knoxville/").status_code == 404  # nobody
    assert client.get("/zz/memphis/").status_code == 404  # no such state
    assert client.get("/tn/memphis/faktr/").status_code == 404  # nobody with FAKTR
    assert client.get("/tn/memphis/art-spine/").status_code == 404  # a level, not a technique
    assert client.get("/tn/memphis/reiki/").status_code == 404
    assert client.get("/tn/memphis/?page=9").status_code == 404


def test_an_expired_certificate_gives_no_technique_page(client):
    practitioner_near_zip(
        "38117", 1, certifications=["faktr"], expires_on=dt.date.today() - dt.timedelta(days=1)
    )
    assert client.get("/tn/memphis/").status_code == 200
    assert client.get("/tn/memphis/faktr/").status_code == 404


def test_a_city_page_answers_for_every_spelling_of_the_city_and_upper_case_redirects(client):
    practitioner_near_zip("38117", 1, name="Upper")
    Practitioner.objects.get(name="Upper").locations.update(city="MEMPHIS")
    practitioner_near_zip("38117", 2, name="Lower")
    response = client.get("/TN/Memphis/")
    assert response.status_code == 301 and response["Location"] == "/tn/memphis/"
    page = browsing.soup(client.get("/tn/memphis/"))
    assert [a.get_text() for a in page.select(".result-name a")] == ["Upper", "Lower"]


def test_city_pages_are_paged_and_each_page_has_its_own_title_and_canonical_url(client, settings):
    settings.SEARCH_PAGE_SIZE = 2
    for miles in (1, 2, 3):
        practitioner_near_zip("38117", miles, name=f"P{miles}")
    first = client.get("/tn/memphis/?utm_source=newsletter&page=1")
    second = browsing.follow(client, first, text="Next")
    assert [a.get_text() for a in browsing.soup(second).select(".result-name a")] == ["P3"]
    assert canonical_of(first) == "http://testserver/tn/memphis/"
    assert canonical_of(second) == "http://testserver/tn/memphis/?page=2"
    assert title_of(first) != title_of(second)
    assert description_of(first) != description_of(second)


def test_every_landing_page_has_a_title_and_description_of_its_own(client, memphis):
    paths = ["/conditions/", "/tn/memphis/", "/tn/memphis/art/", "/tn/memphis/graston/"]
    paths += [c.get_absolute_url() for c in Condition.objects.all()]
    paths += ["/techniques/art/", "/techniques/graston/", "/techniques/mckenzie-mdt/"]
    titles, descriptions = {}, {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        titles.setdefault(title_of(response), []).append(path)
        descriptions.setdefault(description_of(response), []).append(path)
    assert [paths for paths in titles.values() if len(paths) > 1] == []
    assert [paths for paths in descriptions.values() if len(paths) > 1] == []


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/search/?zip=38117&radius=25",
        "/conditions/",
        "/conditions/plantar-fasciitis/",
        "/techniques/art/",
        "/tn/memphis/",
        "/submit/",
    ],
)
def test_every_page_names_its_canonical_url_without_tracking_parameters(client, memphis, path):
    join = "&" if "?" in path else "?"
    tracked = f"{path}{join}utm_source=mail&utm_campaign=x&gclid=abc&fbclid=def"
    response = client.get(tracked)
    assert response.status_code == 200
    assert canonical_of(response) == f"http://testserver{path}"


def test_a_profile_has_open_graph_tags_and_a_canonical_url_without_any_query(client, memphis):
    near, _, _ = memphis
    PractitionerCertification.objects.create(
        practitioner=near, certification=certification("graston-m2")
    )
    response = client.get(f"{near.get_absolute_url()}?utm_source=x&anything=else")
    page = browsing.soup(response)
    og = {tag["property"]: tag["content"] for tag in page.select('meta[property^="og:"]')}
    assert og["og:type"] == "profile"
    assert og["og:title"] == "Ann Art, DC"
    assert og["og:url"] == f"http://testserver{near.get_absolute_url()}"
    assert og["og:description"] == (
        "Chiropractor in Memphis, TN. Certified in ART Spine and Graston Technique M2 (Advanced)."
    )
    assert canonical_of(response) == og["og:url"]
    assert description_of(response).startswith("Ann Art, DC: Chiropractor in Memphis, TN.")


def test_landing_pages_run_a_fixed_number_of_queries(
    client, memphis, django_assert_max_num_queries
):
    for miles in range(4, 30):
        practitioner_near_zip("38117", miles / 10, certifications=["art", "graston"])
    for path, queries in [
        ("/conditions/", 2),
        ("/conditions/low-back-pain/", 2),
        ("/techniques/art/", 4),
        ("/tn/memphis/", 7),
        ("/tn/memphis/art/", 8),
    ]:
        client.get(path)  # the state's cities are cached after the first view
        with django_assert_max_num_queries(queries):
            assert client.get(path).status_code == 200
