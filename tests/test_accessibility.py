"""Every page type held to axe-core (WCAG 2.0 and 2.1, A and AA, and best practices).

axe-core comes from npm (package.json; `npm ci` in .ci/run) into node_modules/, which the site
never serves: each test reads the file and evaluates it in the page, through the browser's
debugging protocol, so the page's Content Security Policy is not loosened for it. A violation
fails the test with its rule, its impact and the elements it names.

Pages added by later issues (sign-in and the owner's dashboard, the claim form) join
``test_every_public_page_type_passes_axe`` or the staff test when they are built.
"""

from __future__ import annotations

import datetime as dt
import io
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


def visit_each(page: Page, pages: dict[str, str], *, status: int = 200) -> None:
    for what, path in pages.items():
        response = page.goto(path)
        assert response is not None and response.status == status, (what, path)
        page.wait_for_load_state("load")
        assert_axe_clean(page, what)


def test_the_condition_and_landing_pages_and_the_condition_search_pass_axe(open_page, memphis):
    page = open_page("/conditions/")
    assert_axe_clean(page, "the conditions")
    visit_each(
        page,
        {
            "a condition page": "/conditions/plantar-fasciitis/",
            "a condition page without a technique": "/conditions/tmj-disorders/",
            "a technique page": "/techniques/art/",
            "a place page": "/tn/memphis/",
            "a place-by-technique page": "/tn/memphis/art/",
            "a condition search": "/search/?zip=38117&condition=plantar-fasciitis",
        },
    )
    visit_each(
        page,
        {
            "the conditions a word could be": "/search/?zip=38117&condition=elbow",
            "an unknown condition": "/search/?zip=38117&condition=zzqx",
            "a condition without a technique": "/search/?zip=38117&condition=jaw+pain",
        },
        status=400,
    )
    # The suggestions open under the field, as a person typing sees them.
    page.goto("/")
    field = page.get_by_role("combobox", name="What's bothering you?")
    field.press_sequentially("pirformis", delay=20)
    expect(page.get_by_role("option", name=re.compile("^Piriformis syndrome"))).to_be_visible()
    field.press("ArrowDown")
    assert_axe_clean(page, "the condition suggestions, one selected")
    assert not page.script_errors


def signed_in_page(open_page, live_server, client, user) -> Page:
    """A browser page whose session is ``user``'s."""
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    page = open_page("/static/css/site.css")
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return page


def account(email: str):
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email, email, "a-long-passphrase-42")
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def test_sign_in_sign_up_and_the_account_pages_pass_axe(open_page, live_server, client):
    page = open_page("/accounts/login/")
    assert_axe_clean(page, "sign in")
    visit_each(
        page,
        {
            "sign up": "/accounts/signup/",
            "sign in with a code": "/accounts/login/code/",
            "password reset": "/accounts/password/reset/",
        },
    )
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill("nobody@example.org")
    page.locator("input[name=password]").fill("wrong-password")
    page.locator("main form").get_by_role("button", name="Sign In").click()
    expect(page.locator("main")).to_contain_text("not correct")
    assert_axe_clean(page, "sign in with an error")
    page.goto("/accounts/signup/")
    page.locator("input[name=email]").fill("someone@example.org")
    page.locator("input[name=password1]").fill("short")
    page.locator("input[name=password2]").fill("other")
    page.locator("main form").get_by_role("button", name="Sign Up").click()
    expect(page.locator("main .errorlist").first).to_be_visible()
    assert_axe_clean(page, "sign up with errors")

    page = signed_in_page(open_page, live_server, client, account("jane@clinic.example"))
    visit_each(
        page,
        {
            "the e-mail addresses": "/accounts/email/",
            "password change": "/accounts/password/change/",
            "my listing, for an account without one": "/my-listing/",
        },
    )


def test_the_claim_form_and_the_owner_s_pages_pass_axe(open_page, live_server, client, memphis):
    from django.utils import timezone

    from practitioners.models import Practitioner

    owned, unclaimed = memphis["nearest"], memphis["levels"]
    owner = account("owner@clinic.example")
    Practitioner.objects.filter(pk=owned.pk).update(claimed_by=owner, claimed_at=timezone.now())
    Practitioner.objects.filter(pk=unclaimed.pk).update(email="them@example.org")
    clinic = owned.locations.get()
    page = signed_in_page(open_page, live_server, client, owner)
    visit_each(
        page,
        {
            "my listing (the dashboard)": "/my-listing/",
            "a clinic's edit form": f"/my-listing/clinics/{clinic.pk}/",
            "adding a clinic": "/my-listing/clinics/add/",
            "a clinic's hours, closure and access": f"/my-listing/clinics/{clinic.pk}/hours/",
        },
    )
    page.goto(f"/practitioners/{unclaimed.slug}/claim/")
    assert_axe_clean(page, "the claim form refusing an owner a second listing")
    # The dashboard's forms sent empty come back with their errors.
    for form, what in [
        ("#details-form", "the details"),
        ("#certification-form", "a certification"),
        ("#change-form", "a change request"),
    ]:
        page.goto("/my-listing/")
        if form == "#details-form":
            page.locator(form).locator("input[type=url]").first.fill("not a web address")
        page.locator(form).locator("button[type=submit]").click()
        page.wait_for_load_state("load")
        expect(page.locator("main .errorlist, main .field-error").first).to_be_visible()
        assert_axe_clean(page, f"my listing, {what} with errors")
    # The hours editor with an interval that has no closing time, and a price range upside down.
    page.goto(f"/my-listing/clinics/{clinic.pk}/hours/")
    page.locator("#hours-row-1 select").select_option(label="Monday")
    page.locator("#hours-row-1 input[name$=opens]").fill("08:00")
    page.get_by_role("button", name="Save hours and access").click()
    expect(page.locator("#hours-row-1 .field-error")).to_be_visible()
    assert_axe_clean(page, "a clinic's hours with an error")
    page.goto("/my-listing/")
    page.locator("#practice-form input[name=self_pay_min]").fill("200")
    page.locator("#practice-form input[name=self_pay_max]").fill("100")
    page.get_by_role("button", name="Save languages and payment").click()
    expect(page.locator("#practice-form .field-error")).to_be_visible()
    assert_axe_clean(page, "my listing, languages and payment with errors")
    # Claiming by a code sent to the listing's address: the page that asks for the code.
    page = signed_in_page(open_page, live_server, client, account("claimant@example.org"))
    visit_each(
        page,
        {
            "the claim form": f"/practitioners/{unclaimed.slug}/claim/",
            "the claim form for a listing someone owns (a dispute)": (
                f"/practitioners/{owned.slug}/claim/"
            ),
        },
    )
    page.goto(f"/practitioners/{unclaimed.slug}/claim/")
    page.locator("#code-form").locator("button[type=submit]").click()
    expect(page.locator("#claim-code-form")).to_be_visible()
    assert_axe_clean(page, "the claim code form")
    page.locator("#claim-code-form input[name=code]").fill("000000")
    page.locator("#claim-code-form").locator("button[type=submit]").click()
    expect(page.locator("#claim-code-form .field-error")).to_be_visible()
    assert_axe_clean(page, "the claim code form with an error")
    assert not page.script_errors


def test_the_admin_pages_staff_use_every_day_pass_axe(staff_page, memphis):
    from practitioners.ingest.roster import import_roster
    from practitioners.models import Condition, RosterReview
    from tests.factories import LocationFactory, PractitionerFactory, certification
    from tests.test_import import SAMPLE

    listing = memphis["nearest"]
    # Two namesakes a roster's "J. Smith" could be: a row for staff to decide.
    for name in ("John Smith", "James Smith"):
        LocationFactory(practitioner=PractitionerFactory(name=name), postal_code="38117")
    import_roster(
        stream=io.StringIO("name,city,state,zip,level\nJ. Smith,Memphis,TN,38117,M1\n"),
        technique=certification("graston"),
        as_of=dt.date(2026, 5, 1),
    )
    review = RosterReview.objects.get()
    changelist = "/admin/practitioners/practitioner/"
    page = staff_page(changelist)
    assert_axe_clean(page, "the listings changelist")
    for what, path in {
        "the admin index (work queue)": "/admin/",
        "a listing's change form": f"{changelist}{listing.pk}/change/",
        "the duplicates page": f"{changelist}duplicates/",
        "the CSV upload": f"{changelist}import-csv/",
        "the claims to review": "/admin/practitioners/listingclaim/?queue=review",
        "the conditions": "/admin/practitioners/condition/",
        "a condition's change form": "/admin/practitioners/condition/"
        f"{Condition.objects.get(slug='plantar-fasciitis').pk}/change/",
        "the roster reviews": "/admin/practitioners/rosterreview/",
        "a roster review (a row beside its candidates)": "/admin/practitioners/rosterreview/"
        f"{review.pk}/change/",
    }.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert_axe_clean(page, what)

    page.goto(f"{changelist}import-csv/")
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
