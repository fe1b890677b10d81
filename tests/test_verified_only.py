"""Self-reported certifications still match a certification search, labelled as such; a search
with "Verified certifications only" keeps only what staff verified (issue 18)."""

from __future__ import annotations

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.utils import timezone

from practitioners.models import PractitionerCertification
from tests.browsing import form, submit, text_of
from tests.factories import certification, practitioner_near_zip

pytestmark = pytest.mark.django_db

API = "/api/practitioners/"


@pytest.fixture
def verified_and_self_reported():
    verified = practitioner_near_zip("38117", 1, name="Vera Checked")
    PractitionerCertification.objects.create(
        practitioner=verified,
        certification=certification("art"),
        verified_on=timezone.localdate() - dt.timedelta(days=30),
    )
    claimed = practitioner_near_zip("38117", 2, name="Sally Says")
    PractitionerCertification.objects.create(
        practitioner=claimed, certification=certification("art"), self_reported=True
    )
    return verified, claimed


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


def test_a_self_reported_certification_matches_and_is_labelled_on_the_result_row(
    client, verified_and_self_reported
):
    page = client.get("/search/?zip=38117&certification=art")
    assert "Vera Checked" in text_of(page) and "Sally Says" in text_of(page)
    # The whole result row (li.result), not a piece of its markup: the row now holds lists
    # of its own (badges, practice facts).
    rows = BeautifulSoup(page.content, "html.parser").select("li.result")
    sally = [row for row in rows if "Sally Says" in row.select_one(".result-name").get_text()]
    assert len(sally) == 1 and "self-reported" in sally[0].select_one(".badges").get_text()
    api = client.get(API, {"zip": "38117", "certification": "art"}).json()
    by_name = {row["name"]: row for row in api["results"]}
    assert by_name["Sally Says"]["self_reported_certifications"] == ["art"]
    assert by_name["Vera Checked"]["self_reported_certifications"] == []


def test_verified_only_keeps_only_what_staff_verified_on_the_page_and_the_api(
    client, verified_and_self_reported
):
    api = client.get(API, {"zip": "38117", "certification": "art", "verified_only": "true"})
    assert names(api) == ["Vera Checked"]
    # Ticking the box on the page, as a person would, gives the same and keeps it ticked.
    page = client.get("/search/?zip=38117&certification=art")
    ticked = submit(
        client, form(page, "form.search-form").set("verified_only", "true"), follow=True
    )
    assert ticked.status_code == 200
    assert "Vera Checked" in text_of(ticked) and "Sally Says" not in text_of(ticked)
    assert ("verified_only", "true") in form(ticked, "form.search-form").fields


def test_verified_only_without_a_certification_needs_some_verified_certificate(
    client, verified_and_self_reported
):
    practitioner_near_zip("38117", 3, name="Nora None")
    everyone = client.get(API, {"zip": "38117"})
    assert set(names(everyone)) == {"Vera Checked", "Sally Says", "Nora None"}
    assert names(client.get(API, {"zip": "38117", "verified_only": "true"})) == ["Vera Checked"]


def test_verified_only_takes_true_or_false_and_names_the_parameter_otherwise(client):
    response = client.get(API, {"zip": "38117", "verified_only": "maybe"})
    assert response.status_code == 400
    assert "verified_only" in response.json()


def test_a_verified_only_first_page_runs_at_most_four_statements(
    client, verified_and_self_reported, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):
        client.get(API, {"zip": "38117", "certification": "art", "verified_only": "true"})


def test_a_listing_nobody_confirmed_for_months_says_so_on_its_result_row(client, settings):
    settings.LISTING_STALE_AFTER_DAYS = 180
    old = practitioner_near_zip("38117", 1, name="Olive Oldlisting")
    fresh = practitioner_near_zip("38117", 2, name="Frank Fresh")
    long_ago = timezone.now() - dt.timedelta(days=400)
    type(old).objects.filter(pk__in=[old.pk, fresh.pk]).update(created_at=long_ago)
    type(fresh).objects.filter(pk=fresh.pk).update(last_confirmed_on=timezone.localdate())
    page = client.get("/search/?zip=38117")
    rows = {
        name: row
        for row in page.content.decode().split('<li class="result"')[1:]
        for name in ("Olive Oldlisting", "Frank Fresh")
        if name in row
    }
    assert "This listing may be out of date" in rows["Olive Oldlisting"]
    assert "This listing may be out of date" not in rows["Frank Fresh"]
