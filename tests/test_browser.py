"""The search in a real browser: Playwright for Python driving the system's Chromium.

Skipped, with the reason in the test summary, where Chromium or Playwright is missing. The
browser is offline: every request that is not to the test server is refused, so the map's tiles
always fail here, and the tests prove that the list and the markers do not need them.
Screenshots land in artifacts/screenshots/ for a reviewer to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from practitioners.models import Location, Practitioner, PractitionerCertification
from practitioners.search import geo
from tests.factories import LocationFactory, PractitionerFactory, certification, profession

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # the tests below are skipped; the names only need to exist
    sync_playwright = None
    Browser = BrowserContext = Page = object

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
TILE_URL = "http://tiles.example.invalid/{z}/{x}/{y}.png"
TILE_ATTRIBUTION = "Tiles by the test tile server"
CSP_PREFIX = "CSP violation:"
CSP_LISTENER = (
    "window.__cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', (e) => {"
    f"  const text = '{CSP_PREFIX} ' + e.violatedDirective"
    "    + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.documentURI + ':' + e.lineNumber;"
    "  window.__cspViolations.push(text); console.error(text);"
    "});"
)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        sync_playwright is None,
        reason="browser tests skipped: the playwright package is not installed "
        "(pip install -r requirements-dev.txt)",
    ),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"browser tests skipped: no Chromium at {CHROMIUM} "
        "(apt-get install chromium, or set CHROMIUM_PATH)",
    ),
    # The live server thread must see rows the test writes, and the reference data (professions,
    # certifications) written by a migration must come back after each flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(scope="module")
def browser(django_db_setup, django_db_blocker) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in this thread; Django would otherwise
    # refuse the ORM calls the tests make while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with django_db_blocker.unblock():
        outer = connections[DEFAULT_DB_ALIAS]
    serialized = getattr(outer, "_test_serialized_contents", None)
    try:
        with sync_playwright() as playwright:
            # With that loop running, Django hands this thread a new connection object (its
            # connection storage is per async context), which lacks the snapshot of the
            # migrated reference data that serialized_rollback restores after each flush.
            inner = connections[DEFAULT_DB_ALIAS]
            if serialized is not None and inner is not outer:
                inner._test_serialized_contents = serialized
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            yield chromium
            chromium.close()
            # The last test's flush emptied the tables: leave the reference data as found, for
            # transactional tests in other files that run after these.
            if serialized is not None:
                with django_db_blocker.unblock():
                    inner.creation.deserialize_db_from_string(serialized)
            # Close that connection here, or PostgreSQL cannot drop the test database later.
            connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def map_settings(settings) -> None:
    settings.MAP_TILE_URL = TILE_URL
    settings.MAP_TILE_ATTRIBUTION = TILE_ATTRIBUTION


@pytest.fixture
def open_page(browser: Browser, live_server, map_settings) -> Iterator[Callable[..., Page]]:
    """``open_page(path, **context_options)``: a fresh browser context that reaches only the
    test server. Refused requests (the map tiles) are recorded in ``page.refused``."""
    contexts: list[BrowserContext] = []

    def open_(path: str = "/", **options) -> Page:
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        refused: list[str] = []

        def offline(route) -> None:
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", offline)
        # Every Content-Security-Policy violation on every page is recorded, from the event
        # the page sees and from the console, and fails the test after it ran.
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.refused = refused
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The listener also writes to the console, so a violation on a page left by a
        # navigation is not lost with that page's window.
        page.on(
            "console",
            lambda message: message.text.startswith(CSP_PREFIX) and violations.add(message.text),
        )
        page.script_errors = errors
        pages.append(page)
        page.goto(path)
        return page

    violations: set[str] = set()
    pages: list[Page] = []
    yield open_
    for page in pages:
        if not page.is_closed():
            violations.update(page.evaluate("window.__cspViolations || []"))
    for context in contexts:
        context.close()
    assert not violations, "Content Security Policy violations:\n" + "\n".join(sorted(violations))


@pytest.fixture
def memphis() -> dict[str, Practitioner]:
    """Practitioners around Memphis 38117: five hold ART and Graston within 25 miles (two share
    a building, one is placed at a ZIP centroid); the others must not appear."""
    centroid = geo.zip_centroid("38117")
    assert centroid is not None
    mile = 1 / 69.05

    def listing(
        name: str,
        credentials: str,
        profession_slug: str,
        certifications: tuple[str, ...],
        miles_north: float,
        *,
        status: str = Practitioner.Status.PUBLISHED,
        precision: str = Location.Precision.PROVIDED,
        clinic: str = "",
        address: str | None = None,
    ) -> Practitioner:
        practitioner = PractitionerFactory(
            name=name,
            credentials=credentials,
            profession=profession(profession_slug),
            status=status,
        )
        LocationFactory(
            practitioner=practitioner,
            name=clinic,
            latitude=centroid.latitude + miles_north * mile,
            longitude=centroid.longitude + miles_north * mile / 3,
            precision=precision,
            **({"address_line1": address} if address else {}),
        )
        for slug in certifications:
            PractitionerCertification.objects.create(
                practitioner=practitioner,
                certification=certification(slug),
                verified_on=dt.date(2026, 3, 1),
            )
        return practitioner

    both = ("art", "graston")
    return {
        "nearest": listing("Avery Chen", "DC", "chiropractor", both, 0.4, clinic="Poplar Spine"),
        "levels": listing(
            "Jordan Ellis", "PT, DPT", "physical-therapist", ("art-spine", "graston-m2"), 1.6
        ),
        "shared_a": listing(
            "Morgan Foster",
            "DC",
            "chiropractor",
            both,
            3.1,
            clinic="Foster Family Chiropractic",
            address="5050 Poplar Ave",
        ),
        "shared_b": listing(
            "Taylor Foster",
            "LMT",
            "massage-therapist",
            both,
            3.1,
            clinic="Foster Family Chiropractic",
            address="5050 Poplar Ave",
        ),
        "approximate": listing(
            "Casey Dawson",
            "ATC",
            "athletic-trainer",
            both,
            6.0,
            precision=Location.Precision.ZIP,
        ),
        "art_only": listing("Riley Bennett", "DC", "chiropractor", ("art",), 1.0),
        "too_far": listing("Quinn Alvarez", "DC", "chiropractor", both, 40.0),
        "draft": listing(
            "Sam Draftsman", "DC", "chiropractor", both, 0.2, status=Practitioner.Status.DRAFT
        ),
    }


def search_memphis_art_and_graston(page: Page) -> None:
    """What a person does on the home page: type the ZIP, tick two techniques, press Search."""
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_label("Active Release Techniques (ART)", exact=True).check()
    page.get_by_label("Graston Technique", exact=True).check()
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"/search/\?"))


def expected_names(radius_mi: float = 25) -> list[str]:
    origin = geo.origin_from_zip("38117")
    queryset = (
        Practitioner.objects.published()
        .holding([certification("art"), certification("graston")])
        .near(origin, radius_mi)
    )
    return [p.name for p in queryset]


def row_names(page: Page) -> list[str]:
    return page.locator("ol.results li.result .result-name a").all_inner_texts()


def marker_numbers(page: Page) -> list[str]:
    return page.locator("#results-map .map-pin").evaluate_all(
        "pins => pins.map(pin => pin.dataset.number)"
    )


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_memphis_art_and_graston_search_typed_by_a_person_lists_and_maps_the_same_rows(
    open_page, memphis
):
    page = open_page("/")
    expect(page.get_by_role("button", name="Use my location")).to_be_visible()
    shot(page, "home")

    search_memphis_art_and_graston(page)

    assert query(page)["zip"] == ["38117"]
    assert query(page)["certification"] == ["art", "graston"]
    expected = expected_names()
    assert len(expected) == 5
    assert "Riley Bennett" not in expected and "Quinn Alvarez" not in expected
    expect(page.locator("ol.results li.result")).to_have_count(5)
    assert row_names(page) == expected
    expect(page.get_by_role("heading", name=re.compile("5 practitioners with"))).to_be_visible()

    # One numbered pin per row, in the same order and with the same numbers as the list.
    expect(page.locator("#results-map .map-pin")).to_have_count(5)
    row_numbers = page.locator("ol.results li.result").evaluate_all(
        "rows => rows.map(row => row.dataset.number)"
    )
    assert marker_numbers(page) == row_numbers == ["1", "2", "3", "4", "5"]
    pin_labels = page.locator("#results-map .map-pin").evaluate_all(
        "pins => pins.map(pin => pin.getAttribute('aria-label'))"
    )
    for label, name in zip(pin_labels, expected, strict=True):
        assert name in label
    assert "approximate location" in pin_labels[expected.index("Casey Dawson")]

    # Tiles come from settings; offline they fail, the page says so, and nothing else breaks.
    assert any(url.startswith("http://tiles.example.invalid/") for url in page.refused)
    expect(page.locator("#map-tiles-unavailable")).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_contain_text(TILE_ATTRIBUTION)
    assert page.script_errors == []

    # Every row carries what a person needs to choose and to go there.
    approximate_row = page.locator("li.result", has_text="Casey Dawson")
    expect(approximate_row).to_contain_text("(approximate location)")
    first = page.locator("li.result").first
    expect(first).to_contain_text("Avery Chen, DC")
    expect(first).to_contain_text("Chiropractor")
    expect(first.locator(".distance")).to_contain_text(re.compile(r"^\d+\.\d mi"))
    expect(first.locator(".badge", has_text="Active Release Techniques (ART)")).to_be_visible()
    expect(first).to_contain_text("Poplar Spine")
    expect(first.get_by_role("link", name=re.compile("^Call"))).to_have_attribute(
        "href", "tel:+19015550100"
    )
    expect(first.get_by_role("link", name=re.compile("^Directions"))).to_have_attribute(
        "href", re.compile(r"^https://www\.google\.com/maps/dir/\?api=1&destination=")
    )
    levels_row = page.locator("li.result", has_text="Jordan Ellis")
    expect(levels_row.locator(".badge", has_text="ART Spine")).to_be_visible()
    expect(levels_row.locator(".badge", has_text="Graston Technique M2 (Advanced)")).to_be_visible()
    shot(page, "memphis-results-desktop")

    first.get_by_role("link", name=re.compile("^Profile")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Avery Chen")
    shot(page, "profile")


def test_clicking_a_marker_highlights_its_row_and_show_on_map_highlights_its_marker(
    open_page, memphis
):
    page = open_page("/search/?zip=38117&radius=25&certification=art&certification=graston")
    rows = page.locator("ol.results li.result")
    pins = page.locator("#results-map .map-pin")
    expect(pins).to_have_count(5)

    pins.nth(1).click()
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-active\b"))
    expect(pins.nth(1)).to_have_class(re.compile(r"\bis-active\b"))
    expect(page.locator("li.result.is-active")).to_have_count(1)
    expect(rows.nth(1).locator(".result-name a")).to_be_focused()

    # The reverse, by keyboard: the row's button lights up its pin and no other.
    rows.nth(3).get_by_role("button", name=re.compile("^Show on map")).focus()
    page.keyboard.press("Enter")
    expect(pins.nth(3)).to_have_class(re.compile(r"\bis-active\b"))
    expect(page.locator("#results-map .map-pin.is-active")).to_have_count(1)
    expect(rows.nth(3)).to_have_class(re.compile(r"\bis-active\b"))

    # A pin is reachable from the keyboard and Enter on it does what a click does.
    pins.nth(0).focus()
    page.keyboard.press("Enter")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bis-active\b"))


PINS_APART_JS = """
() => {
  const centres = Array.from(document.querySelectorAll("#results-map .map-pin")).map((pin) => {
    const box = pin.getBoundingClientRect();
    return [box.x + box.width / 2, box.y + box.height / 2];
  });
  return centres.every(([xa, ya], i) =>
    centres.slice(i + 1).every(([xb, yb]) => Math.hypot(xa - xb, ya - yb) >= 28));
}
"""


def test_pins_never_cover_each_other_even_for_practitioners_sharing_a_building(open_page, memphis):
    page = open_page("/search/?zip=38117&radius=25&certification=art&certification=graston")
    expect(page.locator("#results-map .map-pin")).to_have_count(5)
    page.wait_for_function(PINS_APART_JS, timeout=3000)
    numbers = {
        name: page.locator("li.result", has_text=name).get_attribute("data-number")
        for name in ("Morgan Foster", "Taylor Foster")
    }
    # Both pins at the shared building stay clickable: each one highlights its own row.
    for name, number in numbers.items():
        page.locator(f'#results-map .map-pin[data-number="{number}"]').click()
        expect(page.locator("li.result.is-active")).to_contain_text(name)

    # Zoomed out, every pin crowds together; they fan out again instead of stacking.
    zoom_out = page.get_by_role("button", name="Zoom out")
    for _ in range(4):
        zoom_out.click()
        page.wait_for_timeout(300)  # Leaflet's zoom animation
    page.wait_for_function(PINS_APART_JS, timeout=3000)


CLUSTERS_JS = """
() => {
  const map = document.querySelector("#results-map").getBoundingClientRect();
  const inside = (el) => {
    const box = el.getBoundingClientRect();
    return box.left >= map.left && box.right <= map.right && box.top >= map.top
      && box.bottom <= map.bottom;
  };
  const clusters = Array.from(document.querySelectorAll("#results-map .map-cluster"));
  const pins = Array.from(document.querySelectorAll("#results-map .map-pin"));
  return {
    counts: clusters.map((c) => parseInt(c.querySelector(".map-cluster-count").textContent, 10)),
    names: clusters.map((c) => c.textContent.trim()),
    pins: pins.length,
    allInside: clusters.concat(pins).every(inside),
  };
}
"""


def test_the_nationwide_map_clusters_cities_fits_the_results_and_zooms_in_on_a_cluster(
    open_page,
):
    cities = {"Seattle": (47.6062, -122.3321, 3), "Memphis": (35.1495, -90.0490, 4),
              "Chicago": (41.8781, -87.6298, 2)}  # fmt: skip
    for city, (lat, lon, count) in cities.items():
        for i in range(count):
            practitioner = PractitionerFactory(name=f"{city} {i}")
            LocationFactory(practitioner=practitioner, latitude=lat + i * 0.01, longitude=lon)
    page = open_page("/search/?profession=chiropractor")  # anywhere, by name
    expect(page.locator("#results-map .map-cluster")).to_have_count(3)
    found = page.evaluate(CLUSTERS_JS)
    assert sorted(found["counts"]) == [2, 3, 4] and found["pins"] == 0
    assert found["allInside"], "the map is not fitted to the results"
    assert all(name.endswith("results here: zoom in to see them") for name in found["names"])

    # Enter on a cluster zooms in until its pins stand alone, in the list's order.
    memphis_cluster = page.locator("#results-map .map-cluster", has_text="4")
    memphis_cluster.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#results-map .map-pin")).to_have_count(4)
    assert page.locator("#results-map .map-pin").evaluate_all(
        "pins => pins.map(pin => pin.getAttribute('aria-label'))"
    ) == [f"{n}. Memphis {i}" for n, i in zip(range(3, 7), range(4), strict=True)]

    # "Show on map" on a row whose pin is inside a cluster zooms to it and lights it up.
    page.locator("li.result", has_text="Seattle 2").get_by_role(
        "button", name=re.compile("^Show on map")
    ).click()
    expect(page.locator("#results-map .map-pin.is-active")).to_have_attribute(
        "aria-label", re.compile(r"^\d+\. Seattle 2$")
    )
    shot(page, "nationwide-map")


def test_a_profile_maps_its_clinics_and_links_back_to_the_results(open_page, memphis):
    nearest = memphis["nearest"]
    LocationFactory(practitioner=nearest, name="East Clinic", latitude=35.15, longitude=-89.75)
    page = open_page("/search/?zip=38117&radius=25&certification=art&certification=graston")
    results_url = page.url
    page.locator("li.result .result-name a", has_text="Avery Chen").click()
    page.wait_for_url(re.compile(r"/practitioners/"))

    pins = page.locator("#profile-map .map-pin")
    expect(pins).to_have_count(2)
    assert pins.evaluate_all("pins => pins.map(pin => pin.getAttribute('aria-label'))")[
        1
    ].startswith("2. East Clinic")
    box = page.locator("#profile-map").bounding_box()
    for pin in pins.all():  # the map is fitted to the clinics
        pin_box = pin.bounding_box()
        assert (
            box["x"] <= pin_box["x"] and pin_box["x"] + pin_box["width"] <= box["x"] + box["width"]
        )
        assert (
            box["y"] <= pin_box["y"]
            and pin_box["y"] + pin_box["height"] <= box["y"] + box["height"]
        )
    shot(page, "profile-map")

    page.get_by_role("link", name="Back to the results").click()
    page.wait_for_url(results_url)
    expect(page.locator("ol.results li.result")).to_have_count(5)


def test_use_my_location_with_permission_searches_near_the_position(open_page, memphis):
    centroid = geo.zip_centroid("38117")
    page = open_page(
        "/",
        permissions=["geolocation"],
        geolocation={"latitude": centroid.latitude, "longitude": centroid.longitude},
    )
    page.get_by_label("Active Release Techniques (ART)", exact=True).check()
    page.get_by_label("Graston Technique", exact=True).check()
    page.get_by_role("button", name="Use my location").click()
    page.wait_for_url(re.compile(r"/search/\?.*lat="))

    params = query(page)
    assert float(params["lat"][0]) == pytest.approx(centroid.latitude, abs=1e-4)
    assert float(params["lon"][0]) == pytest.approx(centroid.longitude, abs=1e-4)
    assert params["certification"] == ["art", "graston"]
    expect(page.get_by_role("heading", name=re.compile("of your location"))).to_be_visible()
    assert row_names(page) == expected_names()


def test_use_my_location_refused_says_so_and_the_zip_field_still_searches(open_page, memphis):
    page = open_page("/")  # no geolocation permission granted: the browser refuses
    page.get_by_role("button", name="Use my location").click()
    status = page.locator("#locate-status")
    expect(status).to_contain_text("permission was refused")
    expect(status).to_contain_text("Enter a ZIP code")
    assert urlsplit(page.url).path == "/"

    zip_field = page.get_by_label("ZIP code")
    expect(zip_field).to_be_editable()
    zip_field.fill("38117")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("ol.results li.result").first).to_be_visible()


def test_an_unknown_zip_shows_the_message_next_to_the_field(open_page, memphis):
    page = open_page("/")
    page.get_by_label("ZIP code").fill("00000")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#zip-error")).to_contain_text("00000 was not found")
    expect(page.get_by_label("ZIP code")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("ZIP code")).to_have_value("00000")
    expect(page.locator("#results-map")).to_have_count(0)


def test_the_search_form_sends_only_the_fields_filled_in(open_page, memphis):
    page = open_page("/")
    sent: list[str] = []
    page.on("request", lambda request: "/search/" in request.url and sent.append(request.url))
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("ol.results li.result").first).to_be_visible()
    # Sent clean by the page itself: no redirect was needed.
    assert [parse_qsl(urlsplit(url).query) for url in sent] == [
        [("zip", "38117"), ("radius", "25")]
    ]

    sent.clear()
    page.get_by_label("Active Release Techniques (ART)", exact=True).check()
    page.get_by_label("or city, state").fill("Memphis, TN")
    page.get_by_label("ZIP code").fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("of Memphis, TN"))).to_be_visible()
    assert [sorted(parse_qsl(urlsplit(url).query)) for url in sent] == [
        [("certification", "art"), ("match", "all"), ("near", "Memphis, TN"), ("radius", "25")]
    ]

    # Back on the first page the fields left out are back in the form, and search again.
    page.go_back()
    expect(page.get_by_label("ZIP code")).to_have_value("38117")
    expect(page.get_by_label("or city, state")).to_be_enabled()
    page.locator("details.more-filters summary").click()
    page.get_by_label("Name contains").fill("Avery")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"q=Avery"))
    assert row_names(page) == ["Avery Chen"]


def test_a_box_ticked_before_the_page_script_starts_is_still_sent(open_page, memphis):
    """The results page is usable as soon as it is drawn; its deferred form script may start
    after the person has ticked a box, and must not undo the tick (CI saw this once)."""
    page = open_page("/")
    held: list = []
    page.route("**/search-form*.js", lambda route: held.append(route))
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("ol.results li.result").first).to_be_visible()
    for _ in range(250):  # the results page asks for the script soon after it is drawn
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the results page never asked for search-form.js"
    page.get_by_label("Active Release Techniques (ART)", exact=True).check()

    held[0].continue_()
    page.unroute("**/search-form*.js")
    page.wait_for_load_state("load")
    expect(page.get_by_label("Active Release Techniques (ART)", exact=True)).to_be_checked()
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"certification=art"))
    assert sorted(parse_qsl(urlsplit(page.url).query)) == [
        ("certification", "art"),
        ("match", "all"),
        ("radius", "25"),
        ("zip", "38117"),
    ]


def test_on_a_phone_the_list_comes_first_then_the_map_and_nothing_is_cut_off(open_page, memphis):
    page = open_page(
        "/search/?zip=38117&radius=25&certification=art&certification=graston", **PHONE
    )
    expect(page.locator("#results-map .map-pin")).to_have_count(5)
    width = page.evaluate("window.innerWidth")
    assert width == 390
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    list_box = page.locator("ol.results").bounding_box()
    map_box = page.locator("#results-map").bounding_box()
    assert map_box["y"] >= list_box["y"] + list_box["height"]
    for box in (list_box, map_box):
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    for element in page.locator("li.result, .search-form, .results-summary").all():
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    shot(page, "memphis-results-phone")

    # The form is long on a phone; a link at the top goes straight to the list.
    page.get_by_role("link", name="Go to the results").click()
    expect(page.locator("#results-heading")).to_be_in_viewport()


def test_changing_a_filter_keeps_the_others_and_the_back_button_returns(open_page, memphis):
    page = open_page("/")
    search_memphis_art_and_graston(page)
    first_url = page.url
    expect(page.locator("ol.results li.result")).to_have_count(5)

    page.get_by_label("Within", exact=True).select_option("50")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"radius=50"))
    params = query(page)
    assert params["zip"] == ["38117"]
    assert params["certification"] == ["art", "graston"]
    assert row_names(page) == expected_names(50)
    assert "Quinn Alvarez" in row_names(page)

    page.go_back()
    page.wait_for_url(first_url)
    expect(page.get_by_label("Within", exact=True)).to_have_value("25")
    expect(page.locator("ol.results li.result")).to_have_count(5)


def test_without_javascript_the_search_still_works(open_page, memphis):
    page = open_page("/", java_script_enabled=False)
    expect(page.get_by_role("button", name="Use my location")).to_be_hidden()
    search_memphis_art_and_graston(page)
    assert row_names(page) == expected_names()
    expect(page.locator("#results-map-panel")).to_be_hidden()
    profile_link = page.locator("li.result").first.get_by_role("link", name=re.compile("^Profile"))
    expect(profile_link).to_be_visible()


# The colour arithmetic of WCAG 2.x, run on what the browser actually painted: every visible
# text outside the map tiles, against the first opaque background behind it.
CONTRAST_FAILURES_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
  });
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    return layers.reverse().reduce((acc, c) => over(c, acc), { r: 255, g: 255, b: 255 });
  };
  const luminance = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const failures = [];
  let checked = 0;
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".leaflet-control-container, .visually-hidden, script, style")) continue;
    if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.getClientRects().length === 0) continue;
    const back = background(el);
    const fore = over(parse(style.color), back);
    const [hi, lo] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 40);
      failures.push(`${el.tagName}.${el.className} "${text}": ${ratio.toFixed(2)}`);
    }
  }
  return { checked, failures };
}
"""

FOCUS_INDICATOR_JS = """
() => {
  const el = document.activeElement;
  // A map pin draws its focus ring on the numbered disc inside it.
  const pin = el.classList.contains("map-pin") ? el.querySelector(".map-pin-number") : null;
  const style = getComputedStyle(pin || el);
  return {
    what: [el.tagName, el.id, el.getAttribute("class"), el.getAttribute("aria-label"),
           el.textContent.trim().slice(0, 30)].join(" "),
    visible: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
  };
}
"""


def test_the_results_page_text_passes_aa_contrast_even_on_the_highlighted_row(open_page, memphis):
    page = open_page("/search/?zip=38117&radius=25&certification=art&certification=graston")
    page.locator("#results-map .map-pin").nth(4).click()  # the approximate row, highlighted
    expect(page.locator("li.result.is-active")).to_contain_text("(approximate location)")
    result = page.evaluate(CONTRAST_FAILURES_JS)
    assert result["checked"] > 50
    assert result["failures"] == []


def test_the_keyboard_reaches_form_results_and_pins_with_a_visible_focus_indicator(
    open_page, memphis
):
    page = open_page("/search/?zip=38117&radius=25&certification=art&certification=graston")
    expect(page.locator("#results-map .map-pin")).to_have_count(5)
    reached = []
    for _ in range(120):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_INDICATOR_JS)
        if focus["what"].startswith("BODY"):
            break  # past the last control: the tab cycle has left the page
        assert focus["visible"], f"no visible focus on {focus['what']}"
        reached.append(focus["what"])
    visited = "\n".join(reached)
    for expected in ("id_zip", "Use my location", "Avery Chen", "Show on map", "map-pin"):
        assert expected in visited, f"{expected!r} not reached by Tab:\n{visited}"


def test_a_name_that_looks_like_markup_is_shown_as_text_on_the_map(open_page, memphis):
    hostile = '<img src="x" onerror="window.injected = 1">Lee'
    Practitioner.objects.filter(pk=memphis["nearest"].pk).update(name=hostile)
    page = open_page("/search/?zip=38117&radius=25")
    row = page.locator("li.result", has_text="onerror")
    row.get_by_role("button", name=re.compile("^Show on map")).click()
    tooltip = page.locator(".leaflet-tooltip")
    expect(tooltip).to_contain_text(hostile)
    expect(tooltip.locator("img")).to_have_count(0)
    assert page.evaluate("window.injected") is None


def test_the_public_forms_and_the_admin_pages_staff_use_break_no_content_security_policy(
    open_page, memphis
):
    """The fixture fails the test on any CSP violation; this walks the pages the others skip."""
    from django.contrib.auth import get_user_model

    listing = memphis["nearest"]
    page = open_page("/submit/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto(f"/practitioners/{listing.slug}/report/")
    page.goto(f"/practitioners/{listing.slug}/")

    get_user_model().objects.create_superuser("root", "root@example.org", "a-long-passphrase")
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("a-long-passphrase")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    for path in [
        "/admin/practitioners/practitioner/",
        f"/admin/practitioners/practitioner/{listing.pk}/change/",
        "/admin/practitioners/practitioner/add/",
        "/admin/practitioners/location/",
        "/admin/axes/accessattempt/",
    ]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
    assert not page.script_errors


@pytest.fixture
def staff_page(open_page, client, live_server) -> Callable[..., Page]:
    """``staff_page(path, **options)``: a browser page signed in as a superuser."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("curator", "c@example.com", "pw")
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    def open_(path: str, **options) -> Page:
        page = open_page("/static/css/site.css", **options)
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        page.goto(path)
        return page

    return open_


def test_a_listings_admin_page_fits_a_1400_pixel_screen(staff_page, memphis):
    listing = memphis["nearest"]
    page = staff_page(
        f"/admin/practitioners/practitioner/{listing.pk}/change/",
        viewport={"width": 1400, "height": 900},
    )
    expect(page.locator("#certification_records-group")).to_be_visible()
    widths = page.evaluate(
        """() => {
            const inline = document.querySelector('#certification_records-group');
            return {page: document.documentElement.scrollWidth, inline: inline.scrollWidth,
                    screen: window.innerWidth};
        }"""
    )
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 15).map(e => e.tagName + '#' + e.id + '.' + e.className + ' '
                + Math.round(e.getBoundingClientRect().right))"""
    )
    assert widths["page"] <= widths["screen"], (widths, wide)
    assert widths["inline"] <= widths["screen"], widths
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#certification_records-group").screenshot(
        path=str(SCREENSHOTS / "admin-certificates-1400.png")
    )


def test_list_your_practice_adds_blocks_in_place_and_focuses_the_error_summary(open_page):
    page = open_page("/submit/")
    expect(page.locator("#clinic-blocks fieldset.block")).to_have_count(1)
    for count in range(2, 6):
        page.get_by_role("button", name="Add another clinic").click()
        expect(page.locator("#clinic-blocks fieldset.block")).to_have_count(count)
        focused = page.evaluate("document.activeElement.id")
        assert focused == f"id_clinic-{count - 1}-name"
    expect(page.get_by_role("button", name="Add another clinic")).to_be_hidden()
    assert page.locator('input[name="clinic-TOTAL_FORMS"]').input_value() == "5"
    assert page.url.endswith("/submit/")  # added in place, nothing posted
    page.get_by_label("Street address (required for this clinic)").nth(0).fill("1 Main St")
    page.get_by_role("button", name="Send for review").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name=re.compile("Full name")).click()
    expect(page.locator("#id_name")).to_be_focused()
    assert page.script_errors == []


def test_more_filters_narrow_by_language_access_and_hours_and_the_rows_say_so(open_page, memphis):
    from practitioners.practice import Language, OpeningHours

    spanish = memphis["levels"]
    spanish.languages.set(Language.objects.filter(code__in=["en", "es"]))
    clinic = spanish.locations.get()
    Location.objects.filter(pk=clinic.pk).update(wheelchair_entrance=True)
    for weekday in range(6):
        OpeningHours.objects.create(
            location=clinic, weekday=weekday, opens=dt.time(8), closes=dt.time(19)
        )
    memphis["nearest"].languages.set(Language.objects.filter(code="es"))  # no wheelchair

    page = open_page("/")
    search_memphis_art_and_graston(page)
    expect(page.locator("ol.results li.result")).to_have_count(5)
    page.get_by_text("More filters").click()
    page.get_by_label("Spanish", exact=True).check()
    page.get_by_label("Wheelchair-accessible entrance").check()
    page.get_by_label("Open", exact=True).select_option("weekends")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"language=es"))

    params = query(page)
    assert params["wheelchair"] == ["true"] and params["open"] == ["weekends"]
    assert params["certification"] == ["art", "graston"]
    assert row_names(page) == ["Jordan Ellis"]
    row = page.locator("ol.results li.result").first
    expect(row).to_contain_text("Speaks English, Spanish")
    expect(row).to_contain_text("Wheelchair-accessible entrance")
    # The filters stay open and set, so the next change keeps them.
    expect(page.get_by_label("Spanish", exact=True)).to_be_checked()
    expect(page.get_by_label("Open", exact=True)).to_have_value("weekends")
    shot(page, "search-more-filters")


# --- Searching by condition, and the landing pages -------------------------------------------


def test_typing_a_misspelt_condition_suggests_it_and_the_keyboard_picks_it(open_page, memphis):
    page = open_page("/")
    field = page.get_by_role("combobox", name="What's bothering you?")
    field.press_sequentially("pirformis", delay=20)
    option = page.get_by_role("option", name=re.compile("^Piriformis syndrome"))
    expect(option).to_be_visible()
    expect(field).to_have_attribute("aria-expanded", "true")
    field.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    field.press("Enter")
    expect(field).to_have_value("Piriformis syndrome")
    expect(page.get_by_role("listbox")).to_be_hidden()
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"/search/\?"))
    expect(page.locator("#results-heading")).to_contain_text("used for piriformis syndrome")
    assert row_names(page) == [
        p.name
        for p in Practitioner.objects.published()
        .holding([certification("art")])
        .near(geo.origin_from_zip("38117"), 25)
    ]
    assert not page.script_errors


def test_without_javascript_a_typed_condition_is_resolved_by_the_server(open_page, memphis):
    page = open_page("/", java_script_enabled=False)
    page.get_by_label("What's bothering you?").fill("tenis elbow")
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"/search/\?"))
    expect(page.locator("#results-heading")).to_contain_text("used for lateral epicondylitis")
    page.get_by_label("What's bothering you?").fill("elbow")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name="Medial epicondylitis").click()
    expect(page.locator("#results-heading")).to_contain_text("used for medial epicondylitis")


def test_the_landing_pages_break_no_content_security_policy(open_page, memphis):
    """The fixture fails the test on any CSP violation (the breadcrumbs' JSON-LD included)."""
    page = open_page("/conditions/")
    for path in [
        "/conditions/plantar-fasciitis/",
        "/techniques/art/",
        "/tn/memphis/",
        "/tn/memphis/art/",
    ]:  # not /sitemap.xml: Chromium's own XML viewer styles it inline
        response = page.goto(path)
        assert response is not None and response.status == 200, path
    page.goto("/conditions/plantar-fasciitis/")
    page.get_by_label("ZIP code").fill("38117")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search/\?"))
    expect(page.locator("#results-heading")).to_contain_text("used for plantar fasciitis")
    assert not page.script_errors
