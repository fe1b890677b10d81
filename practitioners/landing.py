"""Pages people arrive on from a search engine: conditions, techniques and places.

Each has a unique title and description, a canonical URL and breadcrumbs (with their JSON-LD).
A place page lists practitioners in and around a city, nearest its centre first, through the
same search as /search/.
"""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import InvalidPage
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import places, seo
from .models import Certification, Condition, ConditionTechnique
from .search.filters import PractitionerFilter
from .search.query import search_practitioners
from .search.results import SearchResults
from .seo import Crumb

HOME = Crumb("Home", "/")


def _canonical(request: HttpRequest, keep: tuple[str, ...] = ()) -> str:
    return seo.canonical_url(request, keep=keep)


def _techniques_phrase(names: list[str]) -> str:
    """["ART", "Graston", "FAKTR"] -> "ART, Graston or FAKTR"."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _links_with_techniques():
    return Prefetch("links", queryset=ConditionTechnique.objects.select_related("certification"))


@require_GET
def condition_list(request: HttpRequest) -> HttpResponse:
    conditions = Condition.objects.prefetch_related(_links_with_techniques())
    crumbs = [HOME, Crumb("Conditions", reverse("practitioners:conditions"))]
    return render(
        request,
        "practitioners/condition_list.html",
        {"conditions": conditions, "crumbs": crumbs, "canonical_url": _canonical(request)},
    )


@require_GET
def condition_detail(request: HttpRequest, slug: str) -> HttpResponse:
    condition = get_object_or_404(
        Condition.objects.prefetch_related(_links_with_techniques()), slug=slug
    )
    links = list(condition.links.all())
    crumbs = [
        HOME,
        Crumb("Conditions", reverse("practitioners:conditions")),
        Crumb(condition.name, condition.get_absolute_url()),
    ]
    return render(
        request,
        "practitioners/condition_detail.html",
        {
            "condition": condition,
            "links": links,
            "techniques_phrase": _techniques_phrase([link.certification.name for link in links]),
            "crumbs": crumbs,
            "canonical_url": _canonical(request),
            "radius_choices": settings.SEARCH_RADIUS_CHOICES_MI,
            "default_radius": settings.SEARCH_DEFAULT_RADIUS_MI,
        },
    )


def _technique(slug: str) -> Certification:
    """A technique (not a level) by slug, or 404."""
    return get_object_or_404(Certification.objects.filter(parent__isnull=True), slug=slug)


@require_GET
def technique_detail(request: HttpRequest, slug: str) -> HttpResponse:
    level = Certification.objects.filter(slug=slug, parent__isnull=False).first()
    if level is not None:  # a level's page is its technique's, which lists the levels
        return redirect("practitioners:technique", slug=level.parent.slug, permanent=True)
    technique = _technique(slug)
    links = list(
        ConditionTechnique.objects.filter(certification=technique)
        .select_related("condition")
        .order_by("condition__name")
    )
    crumbs = [HOME, Crumb(technique.name, reverse("practitioners:technique", args=[slug]))]
    return render(
        request,
        "practitioners/technique_detail.html",
        {
            "technique": technique,
            "levels": list(technique.levels.all()),
            "links": links,
            "crumbs": crumbs,
            "canonical_url": _canonical(request),
        },
    )


def _search_near(request: HttpRequest, place: places.Place, technique: Certification | None):
    """The place's practitioners, nearest its centre first, paged: the /search/ search from the
    centre, with the technique ticked."""
    centre = place.centre()
    data = QueryDict(mutable=True)
    data["lat"] = f"{centre.latitude:.6f}"
    data["lon"] = f"{centre.longitude:.6f}"
    data["radius"] = str(settings.SEARCH_DEFAULT_RADIUS_MI)
    if technique is not None:
        data["certification"] = technique.slug
    filterset = PractitionerFilter(data)
    if not filterset.is_valid():  # pragma: no cover - built from known-good values
        raise Http404("No such place")
    try:
        results: SearchResults = search_practitioners(
            filterset.params, page=request.GET.get("page") or 1, strict=True
        )
    except InvalidPage:
        raise Http404("No such page of results") from None
    return centre, results


@require_GET
def place(
    request: HttpRequest, state: str, city: str, technique: str | None = None
) -> HttpResponse:
    path_args = [state, city, *([technique] if technique else [])]
    if any(arg != arg.lower() for arg in path_args):  # /TN/Memphis/ -> /tn/memphis/
        name = "place-technique" if technique else "place"
        return redirect(reverse(name, args=[arg.lower() for arg in path_args]), permanent=True)
    found = places.find_place(state, city)
    if found is None:
        raise Http404("No published practitioner in this place")
    certification = None
    if technique is not None:
        certification = _technique(technique)
        if not found.has_technique(certification):
            raise Http404("No published practitioner with this technique in this place")
    centre, results = _search_near(request, found, certification)
    state_crumb = Crumb(found.state_name, "")
    place_crumb = Crumb(found.label, reverse("place", args=[found.state_slug, found.slug]))
    crumbs = [HOME, state_crumb, place_crumb]
    if certification is not None:
        crumbs.append(
            Crumb(
                certification.name,
                reverse("place-technique", args=[found.state_slug, found.slug, certification.slug]),
            )
        )
    # The state has no page of its own: its crumb is plain text, and the JSON-LD names only
    # the crumbs with a page.
    techniques = found.techniques() if certification is None else []
    return render(
        request,
        "practitioners/place.html",
        {
            "place": found,
            "technique": certification,
            "results": results,
            "centre": centre,
            "crumbs": crumbs,
            "linked_crumbs": [crumb for crumb in crumbs if crumb.path],
            "techniques": techniques,
            "radius_mi": settings.SEARCH_DEFAULT_RADIUS_MI,
            "canonical_url": _canonical(request, keep=("page",)),
        },
    )
