"""Home, search form and profile pages as a person sees them."""

import datetime as dt
import json
import re

import pytest

from practitioners.models import Location, PractitionerCertification
from tests.browsing import soup
from tests.factories import LocationFactory, certification, practitioner_near_zip

pytestmark = pytest.mark.django_db


def test_home_page_has_a_labelled_search_form_with_the_radius_choices(client):
    html = client.get("/").content.decode()
    assert '<label for="id_zip">ZIP code</label>' in html
    assert 'action="/search/"' in html
    for miles in (5, 10, 25, 50, 100, 250):
        assert f'<option value="{miles}"' in html
    assert re.search(r'<option value="25"\s+selected', html)
    assert 'value="art"' in html and 'value="graston-m1"' in html


def test_bad_zip_is_shown_next_to_the_field_with_the_typed_value_kept(client):
    response = client.get("/search/?zip=3811&radius=25&certification=art")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="zip-error"' in html
    assert "Enter a 5-digit ZIP code" in html
    assert 'value="3811"' in html
    assert re.search(r'value="art"\s+checked', html)


def test_unknown_certification_and_radius_out_of_range_are_explained(client):
    response = client.get("/search/?zip=38117&radius=900&certification=reiki")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown certification reiki" in html
    assert "The radius can be at most 500 miles" in html


def test_search_page_without_parameters_invites_a_zip(client):
    response = client.get("/search/")
    assert response.status_code == 200
    assert "Enter a ZIP code" in response.content.decode()


def test_profile_shows_credentials_certification_levels_verification_and_every_clinic(client):
    practitioner = practitioner_near_zip(
        "38117", 1, name="Jane Roe", credentials="DC, CCSP", bio="Runner.\nTreats runners."
    )
    PractitionerCertification.objects.create(
        practitioner=practitioner,
        certification=certification("graston-m2"),
        verified_on=dt.date(2026, 3, 14),
    )
    LocationFactory(
        practitioner=practitioner, address_line1="55 Second Clinic Rd", phone="901-555-0199"
    )

    response = client.get(practitioner.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "Jane Roe" in html and "DC, CCSP" in html
    assert "Graston Technique M2 (Advanced)" in html and "level of Graston Technique" in html
    assert "verified March 2026" in html
    assert "55 Second Clinic Rd" in html
    assert 'href="tel:+19015550199"' in html
    assert "Runner.<br>Treats runners." in html


def test_profile_bio_html_is_shown_escaped_never_rendered(client):
    practitioner = practitioner_near_zip("38117", 1, bio='<script>alert("x")</script><b>bold</b>')
    html = client.get(practitioner.get_absolute_url()).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_profile_has_schema_org_json_ld_that_cannot_break_out_of_its_script(client):
    practitioner = practitioner_near_zip("38117", 1, name="Eve </script><script>x()</script>")
    html = client.get(practitioner.get_absolute_url()).content.decode()
    [payload] = re.findall(
        r'<script type="application/ld\+json" nonce="[^"]+">(.*?)</script>', html, re.S
    )
    data = json.loads(payload)
    assert data["@type"] == "Person"
    assert data["name"] == "Eve </script><script>x()</script>"
    assert data["workLocation"][0]["address"]["postalCode"] == "38117"


def test_profile_says_approximate_location_for_a_zip_centroid(client):
    practitioner = practitioner_near_zip("38117", 0)
    practitioner.locations.update(precision=Location.Precision.ZIP)
    html = client.get(practitioner.get_absolute_url()).content.decode()
    assert "Approximate location" in html


def test_profile_says_when_no_technique_certification_is_confirmed(client):
    practitioner = practitioner_near_zip("38117", 0)
    html = client.get(practitioner.get_absolute_url()).content.decode()
    assert "No technique certification has been confirmed" in html


def test_unknown_profile_is_404(client):
    assert client.get("/practitioners/nobody-here/").status_code == 404


def test_search_result_says_approximate_location_for_a_zip_centroid(client):
    practitioner = practitioner_near_zip("38117", 0)
    practitioner.locations.update(precision=Location.Precision.ZIP)
    html = client.get("/search/?zip=38117").content.decode()
    assert "approximate location" in html


def test_profile_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    practitioner = practitioner_near_zip("38117", 0, certifications=["art", "graston", "faktr"])
    for _ in range(5):
        LocationFactory(practitioner=practitioner)
    with django_assert_max_num_queries(5):
        assert client.get(practitioner.get_absolute_url()).status_code == 200


def test_profile_offers_a_map_of_the_clinics_that_have_coordinates(client):
    practitioner = practitioner_near_zip("38117", 1, name="Two Clinics")
    LocationFactory(practitioner=practitioner, name="Second", latitude=35.2, longitude=-89.8)
    LocationFactory(practitioner=practitioner, name="Unplaced", latitude=None, longitude=None)

    page = soup(client.get(practitioner.get_absolute_url()))

    panel = page.select_one("#profile-map-panel")
    assert panel is not None and panel.has_attr("hidden")  # shown by profile-map.js
    mapped = page.select("li.location[data-lat][data-lon]")
    assert [li["data-lat"] for li in mapped][1] == "35.200000"
    assert len(mapped) == 2 and len(page.select("li.location")) == 3
    assert page.select('script[src*="profile-map"]') and page.select('link[href*="leaflet.css"]')


def test_profile_without_coordinates_has_no_map(client):
    practitioner = practitioner_near_zip("38117", 1)
    practitioner.locations.update(latitude=None, longitude=None)
    page = soup(client.get(practitioner.get_absolute_url()))
    assert page.select_one("#profile-map-panel") is None
    assert not page.select('script[src*="leaflet"]')
