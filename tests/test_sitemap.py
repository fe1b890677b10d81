"""sitemap.xml and robots.txt as a crawler reads them: valid against the sitemap protocol's
XML schemas (tests/fixtures), every URL in them answering, the private parts kept out."""

import datetime as dt
import io
from pathlib import Path
from xml.etree import ElementTree

import pytest
import xmlschema
from django.core.management import call_command
from django.utils import timezone

from practitioners import sitemaps
from practitioners.curation import services
from practitioners.models import Condition, Location, PlacePage, Practitioner
from tests import browsing
from tests.factories import practitioner_at, practitioner_near_zip

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
URLSET = xmlschema.XMLSchema(FIXTURES / "sitemap.xsd")
INDEX = xmlschema.XMLSchema(FIXTURES / "siteindex.xsd")
NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def urlset(response) -> dict[str, str | None]:
    """loc -> lastmod of a sitemap, after validating it against the protocol's schema."""
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    URLSET.validate(response.content.decode())
    root = ElementTree.fromstring(response.content)
    return {
        url.findtext("s:loc", namespaces=NS): url.findtext("s:lastmod", namespaces=NS)
        for url in root.findall("s:url", NS)
    }


def refresh_place_pages() -> None:
    """What runs after publishing and imports, and hourly (the factories write rows directly)."""
    call_command("refresh_place_pages", verbosity=0)


def index_locs(response) -> list[str]:
    assert response.status_code == 200
    INDEX.validate(response.content.decode())
    root = ElementTree.fromstring(response.content)
    return [s.findtext("s:loc", namespaces=NS) for s in root.findall("s:sitemap", NS)]


@pytest.fixture
def listings():
    art = practitioner_near_zip("38117", 1, name="Ann Art", certifications=["art-spine"])
    graston = practitioner_at(36.16, -86.78, name="Gus Graston", certifications=["graston"])
    graston.locations.update(city="Nashville", postal_code="37203")
    draft = practitioner_near_zip("38117", 2, name="Drew Draft", status=Practitioner.Status.DRAFT)
    practitioner_at(40.75, -73.99, name="Ned NoCity").locations.update(city="New York", state="NY")
    refresh_place_pages()
    return art, graston, draft


def test_robots_txt_points_at_the_sitemap_and_keeps_the_admin_api_and_forms_out(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert "User-agent: *" in lines
    for private in ("/admin/", "/api/", "/submit/", "/practitioners/*/report/"):
        assert f"Disallow: {private}" in lines
    [sitemap_line] = [line for line in lines if line.startswith("Sitemap: ")]
    assert sitemap_line == "Sitemap: http://testserver/sitemap.xml"
    assert client.get(browsing.local_path(sitemap_line.split(" ", 1)[1])).status_code == 200


def test_robots_txt_follows_the_admin_s_configured_path(client, settings):
    settings.ADMIN_URL = "staff-only"
    assert "Disallow: /staff-only/" in client.get("/robots.txt").content.decode().splitlines()


def test_the_sitemap_lists_every_public_page_and_every_url_in_it_answers(client, listings):
    art, graston, draft = listings
    locs = urlset(client.get("/sitemap.xml"))
    paths = {browsing.local_path(loc) for loc in locs}
    assert art.get_absolute_url() in paths and graston.get_absolute_url() in paths
    assert draft.get_absolute_url() not in paths
    assert {"/", "/conditions/", "/conditions/plantar-fasciitis/", "/techniques/art/"} <= paths
    assert {"/tn/memphis/", "/tn/memphis/art/", "/tn/nashville/", "/tn/nashville/graston/"} <= paths
    assert "/tn/memphis/graston/" not in paths and "/ny/new-york/art/" not in paths
    assert len(paths) == Condition.objects.count() + 2 + 6 + 3 + 2 + 3
    for path in sorted(paths):
        assert client.get(path).status_code == 200, path


def test_lastmod_is_the_last_change_to_the_listing_or_its_clinics(client, listings):
    art, _, _ = listings
    later = timezone.now() + dt.timedelta(days=3)
    Location.objects.filter(practitioner=art).update(updated_at=later)
    refresh_place_pages()
    locs = urlset(client.get("/sitemap.xml"))
    assert locs[f"http://testserver{art.get_absolute_url()}"] == later.date().isoformat()
    assert locs["http://testserver/tn/memphis/"] == later.date().isoformat()
    condition = Condition.objects.get(slug="neck-pain")
    assert (
        locs["http://testserver/conditions/neck-pain/"] == condition.updated_at.date().isoformat()
    )


def test_past_the_limit_the_sitemap_is_an_index_of_valid_sections_holding_the_same_urls(
    client, listings, monkeypatch
):
    one_sitemap = set(urlset(client.get("/sitemap.xml")))
    for _ in range(7):
        practitioner_near_zip("38117", 3)
    refresh_place_pages()
    one_sitemap |= {
        f"http://testserver{p.get_absolute_url()}" for p in Practitioner.objects.published()
    }
    monkeypatch.setattr(sitemaps, "LIMIT", 5)
    for sitemap in sitemaps.SITEMAPS.values():
        monkeypatch.setattr(sitemap, "limit", 5)

    sections = index_locs(client.get("/sitemap.xml"))

    assert len(sections) > len(sitemaps.SITEMAPS)  # some sections have several pages
    assert any("sitemap-profiles.xml?p=" in loc for loc in sections)
    seen: set[str] = set()
    for loc in sections:
        page = urlset(client.get(browsing.local_path(loc)))
        assert 0 < len(page) <= 5
        assert not seen & set(page)
        seen |= set(page)
    assert seen == one_sitemap


def test_a_section_page_that_does_not_exist_is_404(client, listings):
    assert client.get("/sitemap-profiles.xml?p=99").status_code == 404
    assert client.get("/sitemap-profiles.xml?p=x").status_code == 404
    assert client.get("/sitemap-nothing.xml").status_code == 404
    assert client.get("/sitemap.xml?p=2").status_code == 404


def test_a_profile_section_runs_a_fixed_number_of_queries(
    client, listings, django_assert_max_num_queries
):
    for _ in range(20):
        practitioner_near_zip("38117", 4)
    with django_assert_max_num_queries(2):  # which range, then its listings with their clinics
        assert client.get("/sitemap-profiles.xml").status_code == 200
    with django_assert_max_num_queries(1):  # one range of the stored place list
        assert client.get("/sitemap-places.xml").status_code == 200
    with django_assert_max_num_queries(1):
        assert client.get("/sitemap-place-techniques.xml").status_code == 200


def test_a_place_by_technique_page_whose_only_certificate_expired_leaves_the_sitemap(
    client, listings, django_assert_max_num_queries
):
    today = timezone.localdate()
    # Memphis: Graston only from a certificate that lapsed yesterday; FAKTR from one that runs
    # out today (still current). Nashville already holds Graston without an expiry date.
    practitioner_near_zip(
        "38117", 2, name="Lapsed Graston", certifications=["graston-m1"],
        expires_on=today - dt.timedelta(days=1),
    )  # fmt: skip
    practitioner_near_zip(
        "38117", 3, name="Dated Faktr", certifications=["faktr"], expires_on=today
    )
    refresh_place_pages()
    with django_assert_max_num_queries(1):
        paths = {
            browsing.local_path(loc) for loc in urlset(client.get("/sitemap-place-techniques.xml"))
        }
    assert client.get("/tn/memphis/graston/").status_code == 404
    assert "/tn/memphis/graston/" not in paths
    assert client.get("/tn/memphis/faktr/").status_code == 200
    assert {"/tn/memphis/art/", "/tn/memphis/faktr/", "/tn/nashville/graston/"} == paths
    # The whole sitemap says the same.
    assert "http://testserver/tn/memphis/graston/" not in urlset(client.get("/sitemap.xml"))


def sitemap_paths(client) -> set[str]:
    return {browsing.local_path(loc) for loc in urlset(client.get("/sitemap.xml"))}


def test_a_newly_published_city_answers_at_once_and_joins_the_sitemap_with_the_refresh(
    client, listings, django_capture_on_commit_callbacks
):
    newcomer = practitioner_at(
        35.96, -83.92, name="Kim Knox", certifications=["graston"],
        status=Practitioner.Status.DRAFT,
    )  # fmt: skip
    newcomer.locations.update(city="Knoxville", postal_code="37902")
    assert client.get("/tn/memphis/").status_code == 200  # Tennessee's cities now cached
    assert client.get("/tn/knoxville/").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        services.publish(practitioners=Practitioner.objects.filter(pk=newcomer.pk))

    assert client.get("/tn/knoxville/").status_code == 200
    assert client.get("/tn/knoxville/graston/").status_code == 200
    assert {"/tn/knoxville/", "/tn/knoxville/graston/", newcomer.get_absolute_url()} <= (
        sitemap_paths(client)
    )


def test_a_suspended_listing_s_only_city_leaves_the_sitemap_with_the_refresh(
    client, listings, django_capture_on_commit_callbacks
):
    _, graston, _ = listings
    assert "/tn/nashville/" in sitemap_paths(client)

    with django_capture_on_commit_callbacks(execute=True):
        services.suspend(practitioners=Practitioner.objects.filter(pk=graston.pk), reason="test")

    assert client.get("/tn/nashville/").status_code == 404
    paths = sitemap_paths(client)
    assert "/tn/nashville/" not in paths and "/tn/nashville/graston/" not in paths
    assert graston.get_absolute_url() not in paths
    assert "/tn/memphis/" in paths


def test_until_the_refresh_the_sitemap_keeps_the_old_list_and_the_pages_stay_right(
    client, listings
):
    _, graston, _ = listings
    # A write no hook sees (the hourly refresh catches it).
    Practitioner.objects.filter(pk=graston.pk).update(status=Practitioner.Status.SUSPENDED)
    assert client.get("/tn/nashville/").status_code == 404
    assert "/tn/nashville/" in sitemap_paths(client)
    refresh_place_pages()
    assert "/tn/nashville/" not in sitemap_paths(client)


def test_a_page_held_by_a_certificate_that_runs_out_today_leaves_the_sitemap_tomorrow(
    client, listings, monkeypatch
):
    today = timezone.localdate()
    practitioner_near_zip(
        "38117", 3, name="Dated Faktr", certifications=["faktr"], expires_on=today
    )
    refresh_place_pages()
    assert client.get("/tn/memphis/faktr/").status_code == 200
    assert "/tn/memphis/faktr/" in sitemap_paths(client)

    tomorrow = timezone.now() + dt.timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)  # no refresh in between

    assert client.get("/tn/memphis/faktr/").status_code == 404
    assert "/tn/memphis/faktr/" not in sitemap_paths(client)
    assert "/tn/memphis/art/" in sitemap_paths(client)


def test_refresh_place_pages_says_what_changed_and_stores_nothing_on_a_dry_run(listings):
    _, graston, _ = listings
    Practitioner.objects.filter(pk=graston.pk).update(status=Practitioner.Status.SUSPENDED)
    out = io.StringIO()
    call_command("refresh_place_pages", dry_run=True, stdout=out)
    assert "Would store 2 place pages and 1 place-by-technique pages (0 new, 2 gone)" in (
        out.getvalue()
    )
    assert PlacePage.objects.filter(path="/tn/nashville/").exists()
    call_command("refresh_place_pages", stdout=out)
    assert not PlacePage.objects.filter(path__startswith="/tn/nashville/").exists()


def test_the_index_of_a_big_directory_lists_only_pages_that_hold_urls(
    client, listings, monkeypatch
):
    art, _, draft = listings
    Practitioner.objects.filter(pk=art.pk).delete()  # the first ids hold no published listing
    monkeypatch.setattr(sitemaps, "LIMIT", 1)
    for sitemap in sitemaps.SITEMAPS.values():
        monkeypatch.setattr(sitemap, "limit", 1)
    sections = index_locs(client.get("/sitemap.xml"))
    published = Practitioner.objects.published()
    profile_pages = [loc for loc in sections if "sitemap-profiles.xml" in loc]
    assert profile_pages == [
        "http://testserver/sitemap-profiles.xml",
        *(f"http://testserver/sitemap-profiles.xml?p={n}" for n in range(2, published.count() + 1)),
    ]
    seen = set()
    for loc in sections:
        page = urlset(client.get(browsing.local_path(loc)))
        assert len(page) == 1
        seen |= set(page)
    profiles = {f"http://testserver{p.get_absolute_url()}" for p in published}
    assert profiles <= seen and f"http://testserver{draft.get_absolute_url()}" not in seen
    assert client.get(f"/sitemap-profiles.xml?p={published.count() + 1}").status_code == 404
