"""Thin HTML views: the FilterSet validates into SearchParams, ``search_practitioners`` answers."""

from __future__ import annotations

from django.conf import settings
from django.db import router
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from . import conditions, curation, ratelimit, seo
from .forms import ListingSubmissionForms, ReportForm
from .models import Location, Practitioner
from .practice import attach_practice_details
from .search.filters import PractitionerFilter
from .search.query import search_practitioners


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    filterset = PractitionerFilter(None)
    return render(
        request,
        "practitioners/home.html",
        {"filterset": filterset, "radius_choices": settings.SEARCH_RADIUS_CHOICES_MI},
    )


def _filled_in(params: QueryDict) -> QueryDict | None:
    """The search with only what was filled in, or None when it already is: a browser sends
    every field, empty ones too (``near=&profession=&q=``), and "all of them" without a
    certification says nothing. People share these URLs."""
    certifications = [value for value in params.getlist("certification") if value.strip()]
    filled = QueryDict(mutable=True)
    for key, values in params.lists():
        if key == "match" and not certifications and set(values) <= {"all", "any"}:
            continue  # a bad value stays, so that the page says what is wrong with it
        filled.setlist(key, [value for value in values if value.strip()])
    filled = QueryDict(filled.urlencode(), mutable=False)  # drops keys left without a value
    if sorted(filled.lists()) == sorted(params.lists()):
        return None
    return filled


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    # Without JavaScript (static/js/search-form.js leaves empty fields out), the clean URL is
    # one redirect away, so the address bar and a shared link show only the search itself.
    filled = _filled_in(request.GET)
    if filled is not None:
        query = filled.urlencode()
        return redirect(f"{request.path}?{query}" if query else request.path)
    filterset = PractitionerFilter(request.GET or None)
    context = {"filterset": filterset, "radius_choices": settings.SEARCH_RADIUS_CHOICES_MI}
    if not filterset.form.is_bound:
        return render(request, "practitioners/search.html", context)
    if not filterset.is_valid():
        return render(request, "practitioners/search.html", context, status=400)
    context["results"] = search_practitioners(filterset.params, page=request.GET.get("page"))
    # Each profile link carries this search, so the profile can link back to this very page.
    context["back"] = request.GET.urlencode()
    if filterset.searched_condition is not None:
        context["condition"] = filterset.searched_condition
        context["condition_in_sentence"] = conditions.in_sentence(filterset.searched_condition.name)
        context["condition_phrase"] = conditions.techniques_phrase(filterset.condition_techniques)
    params = request.GET.copy()
    params.pop("page", None)
    context["query_without_page"] = params.urlencode()
    return render(request, "practitioners/search.html", context)


@require_GET
def profile(request: HttpRequest, slug: str) -> HttpResponse:
    listings = Practitioner.objects.for_listing()
    # Staff preview a listing before it is public ("View on site" in the admin); everyone
    # else sees published listings only.
    if not request.user.has_perm("practitioners.view_practitioner"):
        listings = listings.published()
    practitioner = get_object_or_404(listings, slug=slug)
    locations = list(Location.objects.filter(practitioner=practitioner).order_by("pk"))
    attach_practice_details(
        [practitioner], locations, db=router.db_for_read(Location), now=timezone.now()
    )
    response = render(
        request,
        "practitioners/profile.html",
        {
            "practitioner": practitioner,
            "locations": locations,
            "preview": not practitioner.is_public,
            "summary": profile_summary(practitioner, locations),
            "canonical_url": seo.canonical_url(request, keep=()),
            "back_to_results": back_to_results(request.GET.get("back", "")),
            "mapped_locations": [
                loc for loc in locations if loc.latitude is not None and loc.longitude is not None
            ],
        },
    )
    if not practitioner.is_public:
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex"
    return response


def back_to_results(back: str) -> str | None:
    """The results page a profile was opened from, rebuilt from its search parameters only (the
    path is always the search page, so a crafted ``back`` cannot send anyone elsewhere)."""
    if not back or len(back) > 2000:
        return None
    known = {*PractitionerFilter.base_filters, "page"}
    sent = QueryDict(back)
    kept = QueryDict(mutable=True)
    for name, values in sent.lists():
        if name in known:
            kept.setlist(name, [value for value in values if value.strip()][:20])
    query = QueryDict(kept.urlencode()).urlencode()  # drops parameters left without a value
    return f"{reverse('practitioners:search')}?{query}" if query else None


def profile_summary(practitioner: Practitioner, locations: list[Location]) -> str:
    """One sentence for the meta description and the link preview (Open Graph):
    "Chiropractor in Memphis, TN. Certified in ART Spine and Graston Technique M2."."""
    what = practitioner.profession.name if practitioner.profession else "Practitioner"
    places = list(dict.fromkeys(f"{loc.city}, {loc.state}" for loc in locations))
    sentence = f"{what} in {' and '.join(places[:2])}." if places else f"{what}."
    current = [
        record.certification.name
        for record in practitioner.certification_records.all()
        if record.is_current()
    ]
    if current:
        listed = ", ".join(current[:-1]) + " and " + current[-1] if len(current) > 1 else current[0]
        sentence += f" Certified in {listed}."
    return sentence


# --- Public curation forms: "List your practice" and "Report a problem" ---------------------


@require_http_methods(["GET", "POST"])
def submit_listing(request: HttpRequest) -> HttpResponse:
    posted = request.POST if request.method == "POST" else None
    forms = ListingSubmissionForms(posted)
    context = {"forms": forms}
    if posted is None:
        return render(request, "practitioners/submit.html", context)
    if forms.adding:
        # "Add another clinic / certification" without JavaScript: the same page with one more
        # empty block and everything typed kept. Nothing is saved, so it is not rate limited.
        return render(request, "practitioners/submit.html", context)
    minutes = ratelimit.minutes_to_wait(request)
    if minutes is not None:
        context["wait_minutes"] = minutes
        return ratelimit.too_many(render(request, "practitioners/submit.html", context))
    if forms.is_spam():
        return redirect("practitioners:submit-thanks")
    if forms.is_valid():
        curation.submit_listing(submission=forms.to_submission())
        return redirect("practitioners:submit-thanks")
    return render(request, "practitioners/submit.html", context, status=400)


@require_GET
def submit_thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "practitioners/submit_thanks.html")


@require_http_methods(["GET", "POST"])
def report_listing(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = get_object_or_404(Practitioner.objects.published(), slug=slug)
    form = ReportForm(request.POST if request.method == "POST" else None)
    context = {"practitioner": practitioner, "form": form}
    if request.method == "POST":
        minutes = ratelimit.minutes_to_wait(request)
        if minutes is not None:
            context["wait_minutes"] = minutes
            return ratelimit.too_many(render(request, "practitioners/report.html", context))
        if form.is_spam():
            return redirect("practitioners:report-thanks", slug=slug)
        if form.is_valid():
            curation.report_problem(practitioner=practitioner, **form.cleaned_data_for_report())
            return redirect("practitioners:report-thanks", slug=slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "practitioners/report.html", context, status=status)


@require_GET
def report_thanks(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = get_object_or_404(Practitioner.objects.published(), slug=slug)
    return render(request, "practitioners/report_thanks.html", {"practitioner": practitioner})
