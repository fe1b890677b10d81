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


# Whether a same-origin stylesheet of the page @imports another (Django admin's forms.css).
IMPORTS_A_STYLESHEET = """() => [...document.styleSheets].some((sheet) => {
    try { return [...sheet.cssRules].some((rule) => rule instanceof CSSImportRule); }
    catch (error) { return false; }
})"""


def axe_violations(page: Page) -> list[str]:
    """What axe-core finds wrong on the page as it is now, one line per rule and element.

    axe reads the page's stylesheets (its "CSSOM preload", for css-orientation-lock only) by
    rebuilding any sheet that @imports another as an inline <style>, which the site's CSP
    refuses: a violation axe causes, not the page, and the open_page fixture would fail on
    it. On such pages (the admin's forms) the preload is off and that one rule cannot decide;
    no stylesheet of ours or Django's locks the orientation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    preload = not page.evaluate(IMPORTS_A_STYLESHEET)
    result = page.evaluate(
        """async ([tags, preload]) => {
            const results = await window.axe.run(document, {
                runOnly: { type: "tag", values: tags },
                resultTypes: ["violations"],
                preload,
            });
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ") + " :: " + n.failureSummary
                                           .replace(/\\s+/g, " ").slice(0, 200)),
            }));
        }""",
        [AXE_TAGS, preload],
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


def without_the_site_s_scripts(open_page, path: str, **options) -> Page:
    """``path`` as a browser without JavaScript shows it. Chromium with JavaScript really off
    never finishes axe.run (its timers do not fire), so the page's scripts are refused
    instead: with the CSP allowing no inline script, the site's script files are all the
    JavaScript a page has, and the page renders as with JavaScript off (no <noscript>
    anywhere). test_browser.py covers the truly JavaScript-free search."""
    page = open_page("/static/css/site.css", **options)
    page.route("**/*.js", lambda route: route.abort())
    page.goto(path)
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize(
    ("what", "options", "javascript"),
    [
        ("desktop", {}, True),
        ("phone", PHONE, True),
        ("desktop without JavaScript", {}, False),
        ("phone without JavaScript", PHONE, False),
    ],
)
def test_the_results_page_passes_axe(open_page, memphis, what, options, javascript):
    if javascript:
        page = open_page(RESULTS, **options)
        expect(page.locator("#results-map .map-pin")).to_have_count(5)
        # A highlighted row and pin are part of what people see.
        page.locator("#results-map .map-pin").nth(1).click()
    else:
        page = without_the_site_s_scripts(open_page, RESULTS, **options)
        # The check below saw the page without its scripts: no map was drawn.
        expect(page.locator("#results-map .map-pin")).to_have_count(0)
    expect(page.locator("ol.results li.result")).to_have_count(5)
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
    # The check runs as a task (immediately in the tests); its page is the preview.
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("button", name=re.compile(r"^Import "))).to_be_visible()
    assert_axe_clean(page, "the import preview")


def test_axe_reports_the_rule_its_impact_and_the_elements(open_page):
    """The check itself: a page with a known fault fails, and says where."""
    page = open_page("/")
    page.evaluate(
        "const zip = document.querySelector('#id_zip');"
        # The placeholder alone would name the field (axe accepts it), so it goes too.
        "zip.removeAttribute('placeholder'); zip.removeAttribute('id');"
        "document.querySelector('label[for=id_zip]').removeAttribute('for');"
    )
    found = "\n".join(axe_violations(page))
    assert re.search(r"^label \(critical\)", found, re.M), found
    assert 'input[name="zip"]' in found or "input" in found
    json.dumps(found)  # plain text, printable in a test report


def test_no_stylesheet_locks_the_orientation():
    """What axe's css-orientation-lock would check where its stylesheet preload is off (pages
    whose stylesheets @import, see axe_violations): no stylesheet the site or the admin serves
    has an orientation media query (WCAG 2.1 1.3.4)."""
    import django.contrib.admin

    sheets = [
        *(Path(settings.BASE_DIR) / "static").rglob("*.css"),
        *(Path(django.contrib.admin.__file__).parent / "static").rglob("*.css"),
    ]
    assert sheets
    locking = [str(sheet) for sheet in sheets if "orientation" in sheet.read_text()]
    assert not locking
