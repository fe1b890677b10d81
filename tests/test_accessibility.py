"""Every page type held to axe-core (WCAG 2.0 and 2.1, A and AA, and best practices).

axe-core comes from npm (package.json; `npm ci` in .ci/run) into node_modules/, which the site
never serves: each test reads the file and evaluates it in the page, through the browser's
debugging protocol, so the page's Content Security Policy is not loosened for it. A violation
fails the test with its rule, its impact and the elements it names.

Pages added by later issues (sign-in and the owner's dashboard, the claim form) join
``test_every_public_page_type_passes_axe`` or the staff test when they are built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.test_browser import (  # noqa: F401 - fixtures, used by name
    PHONE,
    Page,
    browser,
    expect,
    map_settings,
    memphis,
    open_page,
    staff_page,
)
from tests.test_browser import pytestmark as browser_marks

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

pytestmark = [
    *browser_marks,
    pytest.mark.skipif(
        not AXE.exists(),
        reason=f"accessibility tests skipped: no axe-core at {AXE} (run `npm ci`)",
    ),
]


def axe_violations(page: Page) -> list[str]:
    """What axe-core finds wrong on the page as it is now, one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    result = page.evaluate(
        """async (tags) => {
            const results = await window.axe.run(document, {
                runOnly: { type: "tag", values: tags },
                resultTypes: ["violations"],
            });
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ") + " :: " + n.failureSummary
                                           .replace(/\\s+/g, " ").slice(0, 200)),
            }));
        }""",
        AXE_TAGS,
    )
    lines = []
    for violation in result:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines += [f"    {node}" for node in violation["nodes"]]
    return lines


def assert_axe_clean(page: Page, what: str) -> None:
    found = axe_violations(page)
    assert not found, f"axe-core on {what} ({page.url}):\n" + "\n".join(found)


RESULTS = "/search/?zip=38117&radius=25&certification=art&certification=graston"


@pytest.mark.parametrize(
    ("what", "options"),
    [
        ("desktop", {}),
        ("phone", PHONE),
        ("desktop without JavaScript", {"java_script_enabled": False}),
        ("phone without JavaScript", {**PHONE, "java_script_enabled": False}),
    ],
)
def test_the_results_page_passes_axe(open_page, memphis, what, options):
    page = open_page(RESULTS, **options)
    expect(page.locator("ol.results li.result")).to_have_count(5)
    if options.get("java_script_enabled", True):
        expect(page.locator("#results-map .map-pin")).to_have_count(5)
        # A highlighted row and pin are part of what people see.
        page.locator("#results-map .map-pin").nth(1).click()
    assert_axe_clean(page, f"the results page ({what})")


def test_every_public_page_type_passes_axe(open_page, memphis, settings):
    listing = memphis["nearest"]
    page = open_page("/")
    assert_axe_clean(page, "the home page")

    pages = {
        "an empty result with the nearest-match offer": "/search/?zip=38117&radius=5&q=Quinn",
        "a result beyond the largest radius": "/search/?zip=99501&radius=250&certification=art",
        "a city several states have": "/search/?near=Memphis",
        "the search with an invalid value": "/search/?zip=38117&certification=art&match=whatever",
        "a 400 for a bad ZIP": "/search/?zip=3811",
        "a nationwide page": "/search/?certification=art",
        "a profile": listing.get_absolute_url(),
        "a profile opened from the results": f"{listing.get_absolute_url()}?back=zip%3D38117",
        "the report form": f"/practitioners/{listing.slug}/report/",
        "List your practice": "/submit/",
        "the conditions": "/conditions/",
    }  # fmt: skip
    for what, path in pages.items():
        page.goto(path)
        page.wait_for_load_state("load")
        assert_axe_clean(page, what)

    page.goto("/submit/")
    page.get_by_role("button", name="Send for review").click()
    expect(page.locator("#error-summary")).to_be_visible()
    assert_axe_clean(page, "List your practice with errors")

    page.goto(f"/practitioners/{listing.slug}/report/")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator(".notice-error")).to_be_visible()
    assert_axe_clean(page, "the report form with errors")

    settings.PUBLIC_FORM_RATE_LIMIT = 0
    page.goto(f"/practitioners/{listing.slug}/report/")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#rate-limit")).to_be_visible()
    assert_axe_clean(page, "the 429 page")
    assert not page.script_errors


def test_a_condition_and_a_place_page_pass_axe(open_page, memphis):
    page = open_page("/conditions/")
    condition = page.locator("main a[href^='/conditions/']").first
    if condition.count():
        condition.click()
        page.wait_for_load_state("load")
        assert_axe_clean(page, "a condition page")
    place = "/tn/memphis/"
    response = page.goto(place)
    if response is not None and response.status == 200:
        assert_axe_clean(page, "a place page")


def test_the_admin_pages_staff_use_every_day_pass_axe(staff_page, memphis):
    from tests.test_import import SAMPLE

    listing = memphis["nearest"]
    changelist = "/admin/practitioners/practitioner/"
    page = staff_page(changelist)
    assert_axe_clean(page, "the listings changelist")
    for what, path in {
        "the admin index (work queue)": "/admin/",
        "a listing's change form": f"{changelist}{listing.pk}/change/",
        "the duplicates page": f"{changelist}duplicates/",
        "the CSV upload": f"{changelist}import-csv/",
    }.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert_axe_clean(page, what)

    page.set_input_files(
        "input[type=file]",
        files=[{"name": "listings.csv", "mimeType": "text/csv", "buffer": SAMPLE.encode()}],
    )
    page.get_by_role("button", name="Preview import").click()
    expect(page.get_by_role("button", name=re.compile("Confirm import"))).to_be_visible()
    assert_axe_clean(page, "the import preview")


def test_axe_reports_the_rule_its_impact_and_the_elements(open_page):
    """The check itself: a page with a known fault fails, and says where."""
    page = open_page("/")
    page.evaluate(
        "document.querySelector('#id_zip').removeAttribute('id');"
        "document.querySelector('label[for=id_zip]').removeAttribute('for');"
    )
    found = "\n".join(axe_violations(page))
    assert re.search(r"^label \(critical\)", found, re.M), found
    assert 'input[name="zip"]' in found or "input" in found
    json.dumps(found)  # plain text, printable in a test report
