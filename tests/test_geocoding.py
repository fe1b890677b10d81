"""Geocoding: every clinic on the map, precisely where possible, never blocking an edit.

geopy's real clients talk to our own loopback server (tests/geocoder_server.py), never the internet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from practitioners import geocoding
from practitioners.geocoding import (
    Outcome,
    geocode_location,
    geocode_locations,
    normalised_address,
    set_manual_position,
)
from practitioners.ingest.csv import COLUMNS, import_practitioners
from practitioners.models import GeocodeCacheEntry, Location
from tests.factories import LocationFactory
from tests.geocoder_server import GeocoderServer, Reply

pytestmark = pytest.mark.django_db

ZIP_38117 = (35.1124, -89.9034)  # the ZIP centroid of 38117 (East Memphis)
NEAR_38117 = (35.1061, -89.8870)  # a real-looking address a mile from it
MANHATTAN = (40.7484, -73.9967)


@pytest.fixture(autouse=True)
def _fresh_throttle(monkeypatch):
    """The rate limiter is process-wide; a delay from one test must not slow the next."""
    monkeypatch.setattr(geocoding, "_throttle", geocoding._Throttle())


@pytest.fixture
def server():
    with GeocoderServer() as running:
        yield running


@pytest.fixture
def online(settings, server):
    """Nominatim's client pointed at the loopback server, no delay between requests."""
    settings.GEOCODER = "nominatim"
    settings.GEOCODER_DOMAIN = server.domain
    settings.GEOCODER_SCHEME = "http"
    settings.GEOCODER_USER_AGENT = "practitioner-locator-tests"
    settings.GEOCODER_TIMEOUT = 2.0
    settings.GEOCODER_MIN_DELAY_SECONDS = 0
    settings.GEOCODER_MAX_ZIP_DISTANCE_MI = 30.0
    return server


def new_location(address_line1: str = "5100 Poplar Ave", **fields) -> Location:
    """A clinic just added in 38117, not geocoded yet."""
    values = {
        "address_line1": address_line1,
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38117",
        "latitude": None,
        "longitude": None,
        "precision": Location.Precision.ZIP,
        "geocode_status": Location.GeocodeStatus.PENDING,
        **fields,
    }
    return LocationFactory(**values)


def reloaded(location: Location) -> Location:
    return Location.objects.get(pk=location.pk)


# --- one location -------------------------------------------------------------------------------


def test_a_good_answer_puts_the_clinic_at_its_address(online):
    online.script(Reply.found(*NEAR_38117, "5100 Poplar Ave, Memphis"))
    location = new_location()

    result = geocode_location(location=location)

    assert result.outcome == Outcome.OK and result.requested and not result.cached
    location = reloaded(location)
    assert (location.latitude, location.longitude) == NEAR_38117
    assert location.precision == Location.Precision.ADDRESS
    assert location.geocode_status == Location.GeocodeStatus.OK
    assert location.geocode_provider == "nominatim"
    assert location.geocoded_at is not None
    assert location.geocode_error == ""
    assert location.geocoded_address == "5100 poplar ave, memphis, tn 38117"
    assert not location.is_approximate


def test_nominatim_is_asked_a_structured_question_restricted_to_the_us(online):
    online.script(Reply.found(*NEAR_38117))
    geocode_location(location=new_location("5100 Poplar Ave.", address_line2="Suite 200"))

    (request,) = online.requests
    assert request.path == "/search"
    assert request.params["street"] == "5100 Poplar Ave."
    assert request.params["city"] == "Memphis"
    assert request.params["state"] == "TN"
    assert request.params["postalcode"] == "38117"
    assert request.params["countrycodes"] == "us"
    assert "q" not in request.params
    assert request.user_agent == "practitioner-locator-tests"


@pytest.mark.parametrize(
    ("provider", "path", "restriction"),
    [
        ("photon", "/api", ("lat", str(ZIP_38117[0]))),  # biased towards the ZIP
        ("pelias", "/v1/search", ("boundary.country", "USA")),
    ],
)
def test_photon_and_pelias_answers_are_read_through_the_same_path(
    online, settings, provider, path, restriction
):
    settings.GEOCODER = provider
    online.script(Reply.found(*NEAR_38117))
    location = new_location()

    assert geocode_location(location=location).outcome == Outcome.OK

    assert reloaded(location).precision == Location.Precision.ADDRESS
    assert reloaded(location).geocode_provider == provider
    (request,) = online.requests
    assert request.path == path
    key, value = restriction
    assert request.params[key] == value


def test_an_empty_answer_falls_back_to_the_zip_centroid_with_the_reason(online):
    online.script(Reply.empty())
    location = new_location()

    assert geocode_location(location=location).outcome == Outcome.ZIP_FALLBACK

    location = reloaded(location)
    assert (location.latitude, location.longitude) == ZIP_38117
    assert location.precision == Location.Precision.ZIP
    assert location.is_approximate
    assert location.geocode_status == Location.GeocodeStatus.OK
    assert "found no match" in location.geocode_error


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (MANHATTAN, "mi from the centre of ZIP 38117"),
        ((50.1109, 8.6821), "outside the United States"),  # a 38117-ish postcode in Germany
    ],
)
def test_an_implausible_answer_is_rejected_and_the_zip_centroid_kept(online, answer, reason):
    online.script(Reply.found(*answer))
    location = new_location()

    assert geocode_location(location=location).outcome == Outcome.ZIP_FALLBACK

    location = reloaded(location)
    assert (location.latitude, location.longitude) == ZIP_38117
    assert location.precision == Location.Precision.ZIP
    assert reason in location.geocode_error
    entry = GeocodeCacheEntry.objects.get()
    assert entry.outcome == GeocodeCacheEntry.Outcome.IMPLAUSIBLE
    assert entry.latitude is None


def test_the_zip_distance_limit_comes_from_settings(online, settings):
    settings.GEOCODER_MAX_ZIP_DISTANCE_MI = 0.5
    online.script(Reply.found(*NEAR_38117))  # about a mile from the centroid
    location = new_location()

    assert geocode_location(location=location).outcome == Outcome.ZIP_FALLBACK
    assert "more than 0.5 mi" in reloaded(location).geocode_error


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply.error(429), "too many requests"),
        (Reply.error(500), "failed"),
        (Reply.error(503), "timed out or was overloaded"),
        (Reply.nonsense(), "could not read"),
        (Reply.nonsense('[{"lat": "north", "lon": "west"}]'), "could not read"),
        (Reply.slow(3.0), "timed out"),
    ],
    ids=["429", "500", "503", "html", "bad-coordinates", "timeout"],
)
def test_a_provider_failure_never_raises_and_marks_the_location_for_retry(
    online, settings, reply, message
):
    settings.GEOCODER_TIMEOUT = 0.3
    online.script(reply)
    location = new_location()

    result = geocode_location(location=location)

    assert result.outcome == Outcome.FAILED
    location = reloaded(location)
    assert location.geocode_status == Location.GeocodeStatus.FAILED
    assert message in location.geocode_error
    assert "will retry" in location.geocode_error
    assert (location.latitude, location.longitude) == ZIP_38117  # still on the map
    assert not GeocodeCacheEntry.objects.exists()  # failures are not cached


def test_a_provider_that_is_down_never_fails_the_save(online, settings):
    settings.GEOCODER_DOMAIN = f"127.0.0.1:{GeocoderServer.closed_port()}"
    location = new_location()
    location.address_line2 = "Suite 9"  # an unsaved edit

    assert geocode_location(location=location).outcome == Outcome.FAILED

    location = reloaded(location)
    assert location.address_line2 == "Suite 9"
    assert location.geocode_status == Location.GeocodeStatus.FAILED
    assert "could not be reached" in location.geocode_error


def test_a_failed_retry_keeps_the_previous_precise_position(online):
    online.script(Reply.found(*NEAR_38117), Reply.error(500))
    location = new_location()
    geocode_location(location=location)

    assert geocode_location(location=location, force=True).outcome == Outcome.FAILED

    location = reloaded(location)
    assert (location.latitude, location.longitude) == NEAR_38117
    assert location.precision == Location.Precision.ADDRESS
    assert location.geocode_status == Location.GeocodeStatus.FAILED


def test_a_failed_location_is_retried_and_then_succeeds(online):
    online.script(Reply.error(500), Reply.found(*NEAR_38117))
    location = new_location()
    geocode_location(location=location)

    assert geocode_location(location=location).outcome == Outcome.OK
    assert reloaded(location).geocode_error == ""
    assert online.request_count == 2


def test_the_same_address_is_sent_only_once_even_for_another_clinic(online):
    online.script(Reply.found(*NEAR_38117))
    first = new_location("5100 Poplar Ave")
    second = new_location(" 5100  POPLAR Ave. ", address_line2="Floor 2")

    geocode_location(location=first)
    result = geocode_location(location=second)

    assert online.request_count == 1
    assert result.cached and not result.requested
    assert (reloaded(second).latitude, reloaded(second).longitude) == NEAR_38117


def test_an_empty_answer_is_cached_too(online):
    online.script(Reply.empty())
    geocode_location(location=new_location())

    result = geocode_location(location=new_location())

    assert online.request_count == 1
    assert result.outcome == Outcome.ZIP_FALLBACK and result.cached


def test_an_unchanged_address_is_never_geocoded_again(online):
    online.script(Reply.found(*NEAR_38117))
    location = new_location()
    geocode_location(location=location)
    location = reloaded(location)
    location.phone = "(901) 555-0199"
    location.save()

    assert geocode_location(location=location).outcome == Outcome.UNCHANGED
    assert online.request_count == 1


def test_an_address_change_is_geocoded_again(online):
    online.script(Reply.found(*NEAR_38117), Reply.found(35.1201, -89.9102))
    location = new_location()
    geocode_location(location=location)
    location = reloaded(location)
    location.address_line1 = "4990 Poplar Ave"
    location.save()

    assert geocode_location(location=location).outcome == Outcome.OK

    assert (reloaded(location).latitude, reloaded(location).longitude) == (35.1201, -89.9102)
    assert online.requests[1].params["street"] == "4990 Poplar Ave"


def test_force_asks_the_provider_again_despite_the_cache(online):
    online.script(Reply.empty(), Reply.found(*NEAR_38117))
    location = new_location()
    geocode_location(location=location)

    assert geocode_location(location=location, force=True).outcome == Outcome.OK
    assert online.request_count == 2
    assert GeocodeCacheEntry.objects.get().outcome == GeocodeCacheEntry.Outcome.FOUND


def test_a_manual_position_is_kept_even_when_forced(online):
    location = new_location()
    set_manual_position(location=location, latitude=35.1100, longitude=-89.9000)

    result = geocode_location(location=reloaded(location), force=True)

    assert result.outcome == Outcome.UNCHANGED
    assert online.request_count == 0
    location = reloaded(location)
    assert (location.latitude, location.longitude) == (35.11, -89.9)
    assert location.precision == Location.Precision.MANUAL
    assert location.geocode_status == Location.GeocodeStatus.MANUAL


def test_a_manual_position_gives_way_when_the_address_changes(online):
    online.script(Reply.found(*NEAR_38117))
    location = new_location("1 Old Rd")
    set_manual_position(location=location, latitude=35.1100, longitude=-89.9000)
    location = reloaded(location)
    location.address_line1 = "5100 Poplar Ave"

    assert geocode_location(location=location).outcome == Outcome.OK
    assert reloaded(location).precision == Location.Precision.ADDRESS


def test_a_manual_position_outside_the_us_is_refused(online):
    location = new_location()
    with pytest.raises(ValidationError, match="right way round"):
        set_manual_position(location=location, latitude=-89.9, longitude=35.11)
    assert reloaded(location).precision == Location.Precision.ZIP


def test_coordinates_provided_with_the_data_are_trusted():
    location = LocationFactory()  # precision "provided"

    assert geocode_location(location=location).outcome == Outcome.UNCHANGED


def test_the_offline_geocoder_places_a_new_clinic_at_its_zip_centroid():
    location = new_location()

    result = geocode_location(location=location)

    assert result.outcome == Outcome.ZIP_FALLBACK and not result.requested
    location = reloaded(location)
    assert (location.latitude, location.longitude) == ZIP_38117
    assert location.geocode_provider == "zip"
    assert location.geocode_status == Location.GeocodeStatus.OK
    assert location.geocode_error == ""


def test_normalised_address_ignores_case_punctuation_and_the_suite():
    a = Location(address_line1="100 N. Main St.", city="Memphis", state="TN", postal_code="38103")
    b = Location(
        address_line1=" 100 n main st ",
        address_line2="Ste 4",
        city="MEMPHIS",
        state="tn",
        postal_code="38103",
    )
    assert normalised_address(a) == normalised_address(b) == "100 n main st, memphis, tn 38103"


# --- rate limit ------------------------------------------------------------------------------


def test_the_provider_sees_at_most_one_request_per_configured_interval(online, settings):
    settings.GEOCODER_MIN_DELAY_SECONDS = 0.2
    online.default = Reply.found(*NEAR_38117)
    locations = [new_location(f"{n} Poplar Ave") for n in range(4)]

    geocode_locations(queryset=Location.objects.filter(pk__in=[x.pk for x in locations]))
    geocode_location(location=new_location("99 Poplar Ave"))  # the single path shares the limit

    assert online.request_count == 5
    assert min(online.gaps()) >= 0.2


def test_a_cached_answer_does_not_wait_for_the_rate_limit(online, settings):
    settings.GEOCODER_MIN_DELAY_SECONDS = 5
    online.script(Reply.found(*NEAR_38117))
    geocode_location(location=new_location())

    started = time.monotonic()
    geocode_location(location=new_location())
    assert time.monotonic() - started < 1


def test_a_retry_after_from_the_provider_is_honoured(online):
    online.script(Reply.error(429, retry_after=1))
    online.default = Reply.found(*NEAR_38117)
    first, second = new_location("1 Poplar Ave"), new_location("2 Poplar Ave")

    summary = geocode_locations(queryset=Location.objects.filter(pk__in=[first.pk, second.pk]))

    assert (summary.failed, summary.ok) == (1, 1)
    assert online.gaps()[0] >= 1.0


# --- in bulk ---------------------------------------------------------------------------------


def test_bulk_geocoding_counts_every_kind_of_outcome(online):
    online.script(
        Reply.found(*NEAR_38117), Reply.empty(), Reply.found(*MANHATTAN), Reply.error(500)
    )
    for street in ("1 A St", "2 B St", "3 C St", "4 D St", "1 A St"):
        new_location(street)

    summary = geocode_locations(queryset=Location.objects.all())

    assert (summary.ok, summary.zip_fallback, summary.failed) == (2, 2, 1)
    assert summary.cached == 1 and summary.requests == 4
    assert "2 ok, 2 zip fallback, 1 failed, 1 cached" in summary.line()
    assert Location.objects.filter(geocode_status=Location.GeocodeStatus.FAILED).count() == 1
    geocoded = Location.objects.filter(address_line1="1 A St").first()
    assert (geocoded.latitude, geocoded.longitude) == NEAR_38117
    assert abs(geocoded.geocoded_at - timezone.now()) < dt.timedelta(minutes=1)
    assert geocoded.history.first().history_change_reason == "geocoded"


def test_bulk_geocoding_stops_when_the_provider_keeps_failing(online):
    online.default = Reply.error(500)
    for n in range(7):
        new_location(f"{n} Poplar Ave")

    summary = geocode_locations(queryset=Location.objects.all())

    assert summary.failed == geocoding.MAX_CONSECUTIVE_FAILURES == online.request_count
    assert "failures in a row" in summary.stopped
    assert Location.objects.filter(geocode_status=Location.GeocodeStatus.PENDING).count() == 2


def test_bulk_geocoding_from_the_cache_takes_a_fixed_number_of_queries_per_chunk(
    online, django_assert_max_num_queries
):
    count = geocoding.BULK_CHUNK_SIZE * 2 + 10
    for n in range(count):
        location = new_location(f"{n} Poplar Ave")
        GeocodeCacheEntry.objects.create(
            provider="nominatim",
            address_key=normalised_address(location),
            outcome=GeocodeCacheEntry.Outcome.FOUND,
            latitude=NEAR_38117[0],
            longitude=NEAR_38117[1],
        )

    # Per chunk of 100: the locations, their cache entries, the edit check, the update and the
    # history (each maybe split in batches on SQLite), savepoints; never one query per location.
    with django_assert_max_num_queries(1 + 3 * 12):
        summary = geocode_locations(queryset=Location.objects.all())

    assert summary.ok == summary.cached == count
    assert online.request_count == 0
    assert Location.objects.filter(precision=Location.Precision.ADDRESS).count() == count


def test_an_edit_made_while_bulk_geocoding_wins(online):
    online.default = Reply.found(*NEAR_38117)
    location = new_location()

    def staff_pins_it_meanwhile(n: int) -> None:
        if n:  # called once the answer is in, before the chunk is saved
            set_manual_position(location=reloaded(location), latitude=35.2, longitude=-89.8)

    summary = geocode_locations(queryset=Location.objects.all(), progress=staff_pins_it_meanwhile)

    assert summary.superseded == 1
    assert reloaded(location).precision == Location.Precision.MANUAL
    assert (reloaded(location).latitude, reloaded(location).longitude) == (35.2, -89.8)


def test_an_interrupted_bulk_run_keeps_what_it_did_and_a_rerun_continues(online):
    online.default = Reply.found(*NEAR_38117)
    for n in range(6):
        new_location(f"{n} Poplar Ave")
    seen = []

    def interrupt_after_three(n: int) -> None:
        seen.append(n)
        if sum(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        geocode_locations(queryset=Location.objects.all(), progress=interrupt_after_three)

    assert Location.objects.filter(geocode_status=Location.GeocodeStatus.OK).count() == 3
    summary = geocode_locations(
        queryset=Location.objects.filter(geocode_status=Location.GeocodeStatus.PENDING)
    )
    assert summary.ok == 3
    assert online.request_count == 6


# --- the command -----------------------------------------------------------------------------


def run_command(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("geocode_locations", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_the_command_is_resumable_with_a_limit(online):
    online.default = Reply.found(*NEAR_38117)
    for n in range(5):
        new_location(f"{n} Poplar Ave")

    assert "2 ok, 0 zip fallback, 0 failed" in run_command("--limit", "2")
    assert online.request_count == 2
    assert "3 ok" in run_command()
    assert online.request_count == 5
    assert "0 ok" in run_command()
    assert online.request_count == 5
    assert not Location.objects.exclude(precision=Location.Precision.ADDRESS).exists()


def test_the_command_dry_run_sends_nothing_and_writes_nothing(online):
    first = new_location("1 Poplar Ave")
    new_location("2 Poplar Ave")
    new_location("3 Poplar Ave")
    GeocodeCacheEntry.objects.create(
        provider="nominatim",
        address_key=normalised_address(first),
        outcome=GeocodeCacheEntry.Outcome.EMPTY,
    )

    output = run_command("--dry-run")

    assert "3 location(s) would be geocoded (1 from the cache, 2 request(s) to send)" in output
    assert online.request_count == 0
    assert Location.objects.filter(geocode_status=Location.GeocodeStatus.PENDING).count() == 3


def test_the_command_picks_locations_by_status(online):
    online.default = Reply.found(*NEAR_38117)
    pending = new_location("1 Poplar Ave")
    failed = new_location("2 Poplar Ave", geocode_status=Location.GeocodeStatus.FAILED)
    moved = new_location(
        "3 Poplar Ave",
        latitude=35.0,
        longitude=-90.0,
        precision=Location.Precision.ADDRESS,
        geocode_status=Location.GeocodeStatus.OK,
        geocoded_address="3 poplar ave, bartlett, tn 38117",  # the city was corrected since
    )
    untouched = LocationFactory()

    run_command("--failed")
    assert reloaded(failed).geocode_status == Location.GeocodeStatus.OK
    assert reloaded(pending).geocode_status == Location.GeocodeStatus.PENDING
    run_command("--pending")
    assert reloaded(pending).geocode_status == Location.GeocodeStatus.OK
    assert reloaded(moved).latitude == 35.0
    run_command("--all")
    assert reloaded(moved).latitude == NEAR_38117[0]
    assert reloaded(untouched).precision == Location.Precision.PROVIDED
    assert online.request_count == 3


def test_the_command_reports_an_interruption_as_resumable(online, monkeypatch):
    new_location()

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        "practitioners.management.commands.geocode_locations.geocode_locations", interrupted
    )
    with pytest.raises(CommandError, match="run the same command again to continue"):
        run_command()


def test_the_command_rejects_a_nonsense_limit():
    with pytest.raises(CommandError):
        run_command("--limit", "0")


# --- the CSV import uses the same path --------------------------------------------------------


def import_csv(*rows: dict[str, str]):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for values in rows:
        writer.writerow(
            {
                "external_id": "ext-1",
                "name": "Jane Roe",
                "profession": "chiropractor",
                "city": "Memphis",
                "state": "TN",
                "postal_code": "38117",
                "status": "published",
                **values,
            }
        )
    return import_practitioners(stream=io.StringIO(buffer.getvalue()))


def test_the_import_geocodes_rows_without_coordinates_through_the_same_path(online):
    online.default = Reply.found(*NEAR_38117)
    rows = (
        {"address_line1": "5100 Poplar Ave"},
        {"address_line1": "77 Given St", "latitude": "35.05", "longitude": "-89.95"},
    )

    report = import_csv(*rows)

    assert report.written and report.geocoding.ok == 1
    geocoded = Location.objects.get(address_line1="5100 Poplar Ave")
    assert geocoded.precision == Location.Precision.ADDRESS
    assert (geocoded.latitude, geocoded.longitude) == NEAR_38117
    provided = Location.objects.get(address_line1="77 Given St")
    assert provided.precision == Location.Precision.PROVIDED
    assert online.request_count == 1

    import_csv(*rows)  # a re-import sends nothing
    assert online.request_count == 1


def test_an_import_is_not_lost_when_the_geocoder_is_down(online, settings):
    settings.GEOCODER_DOMAIN = f"127.0.0.1:{GeocoderServer.closed_port()}"

    report = import_csv({"address_line1": "5100 Poplar Ave"})

    assert report.written and report.geocoding.failed == 1
    location = Location.objects.get()
    assert location.geocode_status == Location.GeocodeStatus.FAILED
    assert (location.latitude, location.longitude) == ZIP_38117


def test_the_import_with_the_offline_geocoder_places_rows_at_their_zip_centroid(server):
    import_csv({"address_line1": "5100 Poplar Ave"})

    location = Location.objects.get()
    assert (location.latitude, location.longitude) == ZIP_38117
    assert location.geocode_provider == "zip"
    assert location.geocode_status == Location.GeocodeStatus.OK
    assert location.geocoded_address == "5100 poplar ave, memphis, tn 38117"
    assert server.request_count == 0


# --- settings -------------------------------------------------------------------------------


def geocoder_setting(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "TESTING", "GEOCODER", "DATABASE_URL"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "directory.settings", "SECRET_KEY": "x" * 50, **env})
    code = "import django; django.setup(); from django.conf import settings as s; print(s.GEOCODER)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env=clean,
        capture_output=True,
        text=True,
    )


def test_production_defaults_to_nominatim_and_development_to_the_zip_centroid():
    assert geocoder_setting(TESTING="false").stdout.strip() == "nominatim"
    assert geocoder_setting(TESTING="false", DEBUG="true").stdout.strip() == "zip"
    assert geocoder_setting(TESTING="true", GEOCODER="nominatim").stdout.strip() == "zip"
    assert "GEOCODER must be" in geocoder_setting(TESTING="false", GEOCODER="google").stderr
