"""How fresh a certification's check is, said in words on the result row and the profile."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from practitioners.models import PractitionerCertification
from tests.browsing import soup, text_of
from tests.factories import certification, practitioner_near_zip

pytestmark = pytest.mark.django_db


def verified(days_ago: int, name: str = "Jane Roe"):
    practitioner = practitioner_near_zip("38117", 1, name=name)
    PractitionerCertification.objects.create(
        practitioner=practitioner,
        certification=certification("art"),
        verified_on=timezone.localdate() - dt.timedelta(days=days_ago),
    )
    return practitioner


def badge_text(client) -> str:
    return text_of(client.get("/search/?zip=38117"), "ol.results")


def test_a_recent_verification_reads_verified_and_the_month_on_the_row(client):
    on = timezone.localdate() - dt.timedelta(days=40)
    verified(40)
    row = badge_text(client)
    assert f"verified {on:%b %Y}" in row
    # As text, not only in a tooltip: no title attribute carries the date.
    assert not soup(client.get("/search/?zip=38117")).select(".badge-verified[title]")


def test_a_verification_over_a_year_old_reads_over_a_year_ago_on_the_row_and_profile(client):
    practitioner = verified(400)
    assert "verified over a year ago" in badge_text(client)
    profile = text_of(client.get(practitioner.get_absolute_url()), ".certifications")
    assert "verified over a year ago" in profile
    old = timezone.localdate() - dt.timedelta(days=400)
    assert f"{old:%B %Y}" not in profile


def test_the_stale_window_is_the_one_staff_use(client, settings):
    settings.VERIFICATION_MAX_AGE_DAYS = 730
    practitioner = verified(400)
    assert PractitionerCertification.objects.stale().count() == 0
    on = timezone.localdate() - dt.timedelta(days=400)
    assert f"verified {on:%b %Y}" in badge_text(client)
    assert f"verified {on:%B %Y}" in text_of(client.get(practitioner.get_absolute_url()), "main")
    verified(800, name="Older")
    assert "verified over 2 years ago" in badge_text(client)


def test_a_certificate_never_verified_shows_no_verified_text(client):
    practitioner = practitioner_near_zip("38117", 1, certifications=["art"])
    assert "verified" not in badge_text(client)
    assert "not yet verified" in text_of(client.get(practitioner.get_absolute_url()), "main")
