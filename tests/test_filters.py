"""The practice filters: each one on the page and in the API (on SQLite and PostgreSQL alike),
"open now" across midnight and time zones, temporary closures, and the clinic shown."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from practitioners.practice import Language, NewPatients, OpeningHours, Payer
from tests.factories import LocationFactory, PractitionerFactory, practitioner_near_zip

pytestmark = pytest.mark.django_db
API = "/api/practitioners/"
T = dt.time
MEMPHIS = "38117"
WEEKDAYS = range(5)


def at(zone: str, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone))


@pytest.fixture
def frozen(monkeypatch):
    """Set the clock the search reads (``django.utils.timezone.now``)."""

    def freeze(moment: dt.datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return freeze


def open_on(clinic, days, opens: dt.time, closes: dt.time) -> None:
    for day in days:
        OpeningHours.objects.create(location=clinic, weekday=day, opens=opens, closes=closes)


def names(client, **params) -> list[str]:
    response = client.get(API, {"zip": MEMPHIS, "radius": 25, **params})
    assert response.status_code == 200, response.content
    return sorted(result["name"] for result in response.json()["results"])


def page_names(client, query: str) -> list[str]:
    from bs4 import BeautifulSoup

    response = client.get(f"/search/?zip={MEMPHIS}&radius=25&{query}")
    assert response.status_code == 200
    soup = BeautifulSoup(response.content, "html.parser")
    return sorted(a.get_text(strip=True) for a in soup.select(".result-name a"))


@pytest.fixture
def memphis():
    """Five listings near 38117 that differ in every practice detail."""
    spanish = practitioner_near_zip(
        MEMPHIS, 1, name="Spanish Selfpay", self_pay=True, gender="female"
    )
    spanish.languages.set(Language.objects.filter(code__in=["en", "es"]))
    asl = practitioner_near_zip(
        MEMPHIS,
        2,
        name="Asl Sliding",
        sliding_scale=True,
        gender="male",
        new_patients=NewPatients.EXISTING_ONLY,
    )
    asl.languages.set(Language.objects.filter(code__in=["ase"]))
    aetna = practitioner_near_zip(
        MEMPHIS, 3, name="Aetna Evenings", new_patients=NewPatients.EXISTING_AND_FAMILY
    )
    aetna.payers.set(Payer.objects.filter(slug__in=["aetna", "medicare"]))
    open_on(aetna.locations.get(), WEEKDAYS, T(12), T(20))
    weekend = practitioner_near_zip(
        MEMPHIS, 4, name="Weekend Wheelchair", new_patients=NewPatients.NOT_ACCEPTING
    )
    weekend.locations.update(wheelchair_entrance=True)
    open_on(weekend.locations.get(), [5], T(9), T(13))
    open_on(weekend.locations.get(), WEEKDAYS, T(8), T(17))
    practitioner_near_zip(MEMPHIS, 5, name="Plain Listing")
    return spanish, asl, aetna, weekend


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"language": "es"}, ["Spanish Selfpay"]),
        ({"language": ["es", "ase"]}, ["Asl Sliding", "Spanish Selfpay"]),  # any of them
        ({"language": "nv"}, []),
        ({"insurance": "aetna"}, ["Aetna Evenings"]),
        ({"insurance": "tricare"}, []),
        ({"self_pay": "true"}, ["Spanish Selfpay"]),
        ({"sliding_scale": "true"}, ["Asl Sliding"]),
        ({"wheelchair": "true"}, ["Weekend Wheelchair"]),
        ({"open": "evenings"}, ["Aetna Evenings"]),
        ({"open": "weekends"}, ["Weekend Wheelchair"]),
        (
            {"new_patients": "accepting"},
            ["Plain Listing", "Spanish Selfpay"],
        ),
        ({"new_patients": "not_accepting"}, ["Weekend Wheelchair"]),
        ({"new_patients": "existing_only"}, ["Asl Sliding"]),
        ({"new_patients": "existing_and_family"}, ["Aetna Evenings"]),
        ({"gender": "female"}, ["Spanish Selfpay"]),
        ({"gender": "male"}, ["Asl Sliding"]),
        # The old yes/no: "false" is any of the three other values.
        (
            {"accepting_new_patients": "false"},
            ["Aetna Evenings", "Asl Sliding", "Weekend Wheelchair"],
        ),
        # Combined with each other and with everything else by AND.
        ({"language": ["es", "ase"], "gender": "male"}, ["Asl Sliding"]),
        ({"wheelchair": "true", "open": "weekends", "new_patients": "accepting"}, []),
        ({"insurance": "medicare", "open": "evenings", "q": "aetna"}, ["Aetna Evenings"]),
    ],
)
def test_each_practice_filter_narrows_the_api_and_the_page_alike(client, memphis, query, expected):
    assert names(client, **query) == expected
    from urllib.parse import urlencode

    assert page_names(client, urlencode(query, doseq=True)) == expected


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ({"language": "xx"}, "language", "Unknown language xx"),
        ({"insurance": "acme"}, "insurance", "Unknown insurance acme"),
        ({"self_pay": "yes"}, "self_pay", "Use true"),
        ({"wheelchair": "1"}, "wheelchair", "Use true"),
        ({"open": "tonight"}, "open", "Use evenings, weekends or now"),
        ({"new_patients": "maybe"}, "new_patients", "Use accepting, not_accepting"),
        ({"gender": "x"}, "gender", "Use female or male"),
    ],
)
def test_an_unknown_filter_value_is_a_400_keyed_by_its_parameter(client, query, parameter, message):
    response = client.get(API, {"zip": MEMPHIS, **query})
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [parameter] and message in body[parameter][0]
    page = client.get("/search/", {"zip": MEMPHIS, **query})
    assert page.status_code == 400 and message in page.content.decode()


def test_the_schema_documents_every_practice_filter(client):
    text = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for parameter in ("language", "insurance", "self_pay", "sliding_scale", "wheelchair", "open"):
        assert f'"name": "{parameter}"' in text or f'"name":"{parameter}"' in text
    for value in ("existing_and_family", "evenings", "weekends", "female"):
        assert value in text


# --- Open now: across midnight and time zones, at fixed instants --------------------------


def test_open_now_is_judged_in_honolulu_and_anchorage_time_at_fixed_instants(client, frozen):
    honolulu = PractitionerFactory(name="Honolulu Clinic")
    open_on(
        LocationFactory(
            practitioner=honolulu,
            city="Honolulu",
            state="HI",
            postal_code="96813",
            latitude=21.3069,
            longitude=-157.8583,
        ),
        WEEKDAYS,
        T(8),
        T(17),
    )
    anchorage = PractitionerFactory(name="Anchorage Clinic")
    open_on(
        LocationFactory(
            practitioner=anchorage,
            city="Anchorage",
            state="AK",
            postal_code="99501",
            latitude=61.2181,
            longitude=-149.9003,
        ),
        WEEKDAYS,
        T(8),
        T(17),
    )

    def open_now(zip_code: str) -> list[str]:
        response = client.get(API, {"zip": zip_code, "radius": 25, "open": "now"})
        return [result["name"] for result in response.json()["results"]]

    utc = "UTC"
    # Monday 19:30 UTC: 9:30 in Honolulu (UTC-10), 11:30 in Anchorage (summer, UTC-8).
    frozen(at(utc, 2026, 6, 1, 19, 30))
    assert (open_now("96813"), open_now("99501")) == (["Honolulu Clinic"], ["Anchorage Clinic"])
    # Tuesday 02:30 UTC: still Monday 16:30 in Honolulu, 18:30 in Anchorage.
    frozen(at(utc, 2026, 6, 2, 2, 30))
    assert (open_now("96813"), open_now("99501")) == (["Honolulu Clinic"], [])
    # Monday 16:30 UTC: 6:30 in Honolulu; 8:30 in Anchorage in June, but 7:30 in January.
    frozen(at(utc, 2026, 6, 1, 16, 30))
    assert (open_now("96813"), open_now("99501")) == ([], ["Anchorage Clinic"])
    frozen(at(utc, 2026, 1, 5, 16, 30))
    assert open_now("99501") == []
    # Saturday: closed everywhere.
    frozen(at(utc, 2026, 6, 6, 20, 0))
    assert (open_now("96813"), open_now("99501")) == ([], [])


def test_open_now_finds_a_clinic_open_past_midnight_and_into_the_next_week(client, frozen):
    late = practitioner_near_zip(MEMPHIS, 1, name="Late Studio")
    clinic = late.locations.get()
    open_on(clinic, [4], T(22), T(2))  # Friday night into Saturday
    open_on(clinic, [6], T(23), T(1))  # Sunday night into Monday
    chicago = "America/Chicago"
    cases = [
        (at(chicago, 2026, 6, 5, 21, 59), []),  # Friday before it opens
        (at(chicago, 2026, 6, 5, 23, 0), ["Late Studio"]),
        (at(chicago, 2026, 6, 6, 1, 59), ["Late Studio"]),  # Saturday, after midnight
        (at(chicago, 2026, 6, 6, 2, 0), []),
        (at(chicago, 2026, 6, 8, 0, 30), ["Late Studio"]),  # Monday, from Sunday night
        (at(chicago, 2026, 6, 8, 1, 0), []),
    ]
    for moment, expected in cases:
        frozen(moment)
        assert names(client, open="now") == expected, moment


def test_a_temporarily_closed_clinic_is_open_again_on_the_day_it_reopens(client, frozen):
    listing = practitioner_near_zip(MEMPHIS, 1, name="Reopening Clinic")
    clinic = listing.locations.get()
    open_on(clinic, range(7), T(8), T(18))
    listing.locations.update(reopens_on=dt.date(2026, 6, 3))
    chicago = "America/Chicago"
    frozen(at(chicago, 2026, 6, 2, 10, 0))
    assert names(client, open="now") == [] and names(client, open="weekends") == []
    assert names(client, open="evenings") == []
    html = client.get(f"/search/?zip={MEMPHIS}").content.decode()
    assert "Temporarily closed until June 3" in html
    frozen(at(chicago, 2026, 6, 3, 10, 0))
    assert names(client, open="now") == ["Reopening Clinic"]
    assert names(client, open="weekends") == ["Reopening Clinic"]
    assert "Open today 8:00-18:00" in client.get(f"/search/?zip={MEMPHIS}").content.decode()


# --- The clinic shown ---------------------------------------------------------------------------


def test_clinic_filters_pick_the_nearest_clinic_that_passes_them(client, frozen):
    listing = practitioner_near_zip(MEMPHIS, 1, name="Two Clinics")
    near = listing.locations.get()
    far = LocationFactory(
        practitioner=listing,
        address_line1="9 Far Rd",
        latitude=near.latitude + 5 / 69.05,
        longitude=near.longitude,
        wheelchair_entrance=True,
    )
    open_on(near, WEEKDAYS, T(8), T(12))
    open_on(far, WEEKDAYS, T(13), T(19))
    frozen(at("America/Chicago", 2026, 6, 1, 15, 0))  # Monday afternoon

    def shown(**params) -> tuple[str, float]:
        result = client.get(API, {"zip": MEMPHIS, "radius": 25, **params}).json()["results"][0]
        return result["location"]["address_line1"], result["distance_mi"]

    assert shown() == (near.address_line1, 1.0)
    assert shown(open="now") == ("9 Far Rd", 6.0)
    assert shown(wheelchair="true") == ("9 Far Rd", 6.0)
    assert shown(open="evenings") == ("9 Far Rd", 6.0)
    html = client.get(f"/search/?zip={MEMPHIS}&open=now").content.decode()
    assert "9 Far Rd" in html and "Open today 13:00-19:00" in html
    # The far clinic out of the radius: nobody.
    assert names(client, open="now", radius=3) == []


def test_practice_filters_without_an_origin_search_by_name(client):
    listing = practitioner_near_zip(MEMPHIS, 1, name="Spanish Speaker")
    listing.languages.set(Language.objects.filter(code="es"))
    listing.locations.update(wheelchair_entrance=True)
    practitioner_near_zip(MEMPHIS, 2, name="Other Speaker")
    body = client.get(API, {"language": "es", "wheelchair": "true"}).json()
    assert [result["name"] for result in body["results"]] == ["Spanish Speaker"]


def test_the_demo_data_finds_someone_for_every_filter_near_38117_and_no_one_for_navajo(client):
    from practitioners.ingest.demo import seed_demo

    seed_demo()
    for query in [
        {"language": "es"},
        {"language": "ase"},
        {"insurance": "medicare"},
        {"self_pay": "true"},
        {"sliding_scale": "true"},
        {"wheelchair": "true"},
        {"open": "evenings"},
        {"open": "weekends"},
        *({"new_patients": value} for value in NewPatients.values),
        {"gender": "female"},
        {"gender": "male"},
    ]:
        assert names(client, **query), query
    assert names(client, language="nv") == []


def test_a_practitioner_is_counted_once_at_the_first_clinic_that_passes_the_clinic_filters(
    client,
):
    # Each listing's first clinic (the lower id) fails "wheelchair"; a later one passes.
    for k in range(3):
        listing = practitioner_near_zip(MEMPHIS, 1 + k, name=f"Branches {k}")
        for extra in range(2):
            LocationFactory(
                practitioner=listing,
                address_line1=f"{k}{extra} Ramp St",
                latitude=listing.locations.first().latitude + (extra + 1) / 69.05,
                longitude=listing.locations.first().longitude,
                wheelchair_entrance=True,
            )
    practitioner_near_zip(MEMPHIS, 4, name="No Ramp")
    body = client.get(API, {"zip": MEMPHIS, "radius": 25, "wheelchair": "true"}).json()
    assert body["count"] == 3
    assert sorted(r["name"] for r in body["results"]) == [f"Branches {k}" for k in range(3)]
    assert all(r["location"]["address_line1"].endswith("0 Ramp St") for r in body["results"])
    assert all(r["location"]["wheelchair_entrance"] for r in body["results"])
    # Within 3.5 miles: Branches 0 (ramps at 2 and 3 mi) and 1 (first ramp at 3 mi), each
    # once; Branches 2's first clinic (3 mi) fails and its ramps lie at 4 and 5 mi.
    near = client.get(API, {"zip": MEMPHIS, "radius": 3.5, "wheelchair": "true"}).json()
    assert near["count"] == 2
    assert sorted(r["name"] for r in near["results"]) == ["Branches 0", "Branches 1"]


def test_a_practitioner_whose_first_clinic_is_temporarily_closed_is_counted_at_the_next_one(
    client, frozen
):
    listing = practitioner_near_zip(MEMPHIS, 1, name="Closed First")
    first = listing.locations.get()
    second = LocationFactory(
        practitioner=listing,
        address_line1="2 Weekend Way",
        latitude=first.latitude + 2 / 69.05,
        longitude=first.longitude,
    )
    for clinic in (first, second):
        open_on(clinic, (5, 6), T(9), T(13))
    listing.locations.filter(pk=first.pk).update(reopens_on=dt.date(2026, 6, 3))
    chicago = "America/Chicago"

    def found() -> tuple[int, list[str]]:
        body = client.get(API, {"zip": MEMPHIS, "radius": 25, "open": "weekends"}).json()
        return body["count"], [r["location"]["address_line1"] for r in body["results"]]

    frozen(at(chicago, 2026, 6, 2, 10, 0))
    assert found() == (1, ["2 Weekend Way"])
    frozen(at(chicago, 2026, 6, 3, 10, 0))
    assert found() == (1, [first.address_line1])


def test_the_search_by_name_shows_the_first_clinic_that_passes_the_clinic_filters(client):
    listing = practitioner_near_zip(MEMPHIS, 1, name="Two Doors")
    LocationFactory(practitioner=listing, address_line1="2 Ramp St", wheelchair_entrance=True)
    body = client.get(API, {"q": "two doors", "wheelchair": "true"}).json()
    assert [r["location"]["address_line1"] for r in body["results"]] == ["2 Ramp St"]
    unfiltered = client.get(API, {"q": "two doors"}).json()["results"][0]
    assert unfiltered["location"]["address_line1"] != "2 Ramp St"


def test_a_search_with_three_practice_filters_runs_no_more_statements_than_without(
    client, memphis, django_assert_max_num_queries
):
    many = {
        "language": ["es", "ase"],
        "wheelchair": "true",
        "open": "weekends",
        "insurance": "medicare",
    }
    for query in (many, {"self_pay": "true", "open": "evenings", "gender": "female"}):
        for url in (API, "/search/"):
            with django_assert_max_num_queries(4):
                response = client.get(url, {"zip": MEMPHIS, "radius": 25, **query})
            assert response.status_code == 200
        with django_assert_max_num_queries(4):
            client.get(API, {"q": "e", **query})
    # A page of rows that all have languages, payers and hours: still one statement for them.
    with django_assert_max_num_queries(4):
        response = client.get("/search/", {"zip": MEMPHIS, "radius": 25})
    assert "Open today" in response.content.decode() or "Closed today" in response.content.decode()


def test_the_next_page_and_the_profiles_back_link_keep_the_practice_filters(client):
    from tests.browsing import follow, form, submit

    for i in range(25):
        listing = practitioner_near_zip(MEMPHIS, 0.1 * (i + 1), name=f"Hablo {i:02d}")
        listing.languages.set(Language.objects.filter(code="es"))
        listing.locations.update(wheelchair_entrance=True)
    practitioner_near_zip(MEMPHIS, 0.05, name="English Only").locations.update(
        wheelchair_entrance=True
    )
    start = client.get("/search/", {"zip": MEMPHIS})
    # Open "More filters", tick Spanish and wheelchair access, search: as a person would.
    filled = form(start, "form.search-form").set("language", ["es"]).set("wheelchair", "true")
    first = submit(client, filled, follow=True)
    assert first.status_code == 200
    shown = form(first, "form.search-form")
    assert ("language", "es") in shown.fields and shown.value("wheelchair") == "true"
    assert "English Only" not in first.content.decode()
    second = follow(client, first, text="Next")
    assert second.status_code == 200
    assert "Hablo 20" in second.content.decode() and "English Only" not in second.content.decode()
    assert ("language", "es") in form(second, "form.search-form").fields
    profile = follow(client, second, text="Hablo 20", selector=".result-name a")
    back = follow(client, profile, text="Back to the results")
    assert ("language", "es") in form(back, "form.search-form").fields
    assert form(back, "form.search-form").value("wheelchair") == "true"
