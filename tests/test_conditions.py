"""Conditions: the model staff curate, its ICD-10-CM check, and the seeded conditions."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from practitioners import icd10
from practitioners.models import Certification, Condition, ConditionTechnique

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("curator", "c@example.com", "pw"))
    return client


def condition_form(**fields) -> dict:
    data = {
        "name": "Hamstring strain",
        "slug": "hamstring-strain",
        "synonyms": "pulled hamstring\n\n  torn hamstring  \npulled hamstring",
        "icd10_codes": "s76.3",
        "description": "A strained muscle at the back of the thigh.",
        "links-TOTAL_FORMS": "1",
        "links-INITIAL_FORMS": "0",
        "links-MIN_NUM_FORMS": "0",
        "links-MAX_NUM_FORMS": "1000",
        "links-0-certification": str(Certification.objects.get(slug="art").pk),
        "links-0-note": "Active Release Techniques lists muscle strains.",
        "links-0-source_url": "https://www.activerelease.com/what-is-art",
    }
    data.update(fields)
    return data


def test_staff_add_a_condition_with_its_technique_codes_normalised_and_synonyms_tidied(
    staff_client,
):
    response = staff_client.post("/admin/practitioners/condition/add/", condition_form())

    assert response.status_code == 302, response.content.decode()[:2000]
    condition = Condition.objects.get(slug="hamstring-strain")
    assert condition.icd10_codes == "S76.3"
    assert condition.synonym_list == ["pulled hamstring", "torn hamstring"]
    assert [link.certification.slug for link in condition.links.all()] == ["art"]


def test_an_unknown_icd10_code_is_refused_with_a_message_naming_it(staff_client):
    response = staff_client.post(
        "/admin/practitioners/condition/add/", condition_form(icd10_codes="M77.1, Z99.999, XYZ")
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Not an ICD-10-CM code: Z99.999, XYZ" in html
    assert not Condition.objects.filter(slug="hamstring-strain").exists()


def test_a_block_of_codes_is_not_a_code():
    with pytest.raises(ValidationError, match="M70-M79"):
        icd10.normalise_codes("M70-M79")
    assert icd10.normalise_codes("m722 G44.2") == "M72.2, G44.2"


def test_a_technique_level_cannot_be_linked_to_a_condition_its_technique_is(staff_client):
    level = Certification.objects.get(slug="art-spine")
    response = staff_client.post(
        "/admin/practitioners/condition/add/",
        condition_form(**{"links-0-certification": str(level.pk)}),
    )

    assert response.status_code == 200
    assert not Condition.objects.filter(slug="hamstring-strain").exists()
    link = ConditionTechnique(
        condition=Condition.objects.first(), certification=level, note="x", source_url="https://x"
    )
    with pytest.raises(ValidationError, match="not one of its levels"):
        link.full_clean()


def test_the_condition_list_in_the_admin_counts_the_techniques(staff_client):
    html = staff_client.get("/admin/practitioners/condition/?q=plantar").content.decode()
    assert "Plantar fasciitis" in html
    assert "M72.2" in html


# Seeded without a technique: no certifying body names it on its own pages (migration 0019).
WITHOUT_A_BODY = {"tmj-disorders"}


def test_about_25_conditions_are_seeded_each_with_a_technique_and_valid_codes():
    conditions = list(Condition.objects.prefetch_related("links__certification"))
    assert len(conditions) >= 25
    for condition in conditions:
        if condition.slug in WITHOUT_A_BODY:
            assert not condition.links.all(), f"{condition}: which body names it? (0019)"
        else:
            assert condition.links.all(), f"{condition} has no technique"
        assert condition.description and condition.synonym_list
        # The codes as seeded are exactly what the admin's check would keep.
        assert icd10.normalise_codes(condition.icd10_codes) == condition.icd10_codes
        condition.full_clean()
    names = {c.slug: c.name for c in conditions}
    for slug in (
        "piriformis-syndrome",
        "plantar-fasciitis",
        "lateral-epicondylitis",
        "medial-epicondylitis",
        "carpal-tunnel-syndrome",
        "it-band-syndrome",
        "rotator-cuff-tendinopathy",
        "shin-splints",
        "achilles-tendinopathy",
        "low-back-pain",
        "neck-pain",
        "tmj-disorders",
    ):
        assert slug in names


def test_each_seeded_technique_cites_its_own_certifying_bodys_site_in_careful_words():
    for link in ConditionTechnique.objects.select_related("certification"):
        body_site = urlsplit(link.certification.website).hostname
        assert body_site, f"{link.certification} has no body of its own to cite"
        assert urlsplit(link.source_url).hostname == body_site
        assert link.source_url.startswith("https://")
        note = link.note.lower()
        assert "lists" in note or "describes" in note
        for claim in ("cure", "heal", "fix", "proven", "effective"):
            assert claim not in note
