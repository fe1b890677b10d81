"""Thin HTML views: the FilterSet validates, the queryset searches, the paginator pages."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .filters import PractitionerFilter
from .models import Location, Practitioner
from .search import run_search


def _search_filterset(request: HttpRequest) -> PractitionerFilter:
    return PractitionerFilter(request.GET or None, queryset=Practitioner.objects.published())


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    filterset = PractitionerFilter(None, queryset=Practitioner.objects.none())
    return render(
        request,
        "practitioners/home.html",
        {"filterset": filterset, "radius_choices": settings.SEARCH_RADIUS_CHOICES_MI},
    )


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    filterset = _search_filterset(request)
    context = {"filterset": filterset, "radius_choices": settings.SEARCH_RADIUS_CHOICES_MI}
    if not filterset.form.is_bound:
        return render(request, "practitioners/search.html", context)
    if not filterset.is_valid():
        return render(request, "practitioners/search.html", context, status=400)
    context["results"] = run_search(filterset, request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context["query_without_page"] = params.urlencode()
    return render(request, "practitioners/search.html", context)


@require_GET
def profile(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = get_object_or_404(Practitioner.objects.published().for_listing(), slug=slug)
    locations = list(Location.objects.filter(practitioner=practitioner).order_by("pk"))
    return render(
        request,
        "practitioners/profile.html",
        {"practitioner": practitioner, "locations": locations},
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any database failure means "not healthy", never a 500 page
        return JsonResponse({"status": "error", "detail": str(error)[:200]}, status=503)
    return JsonResponse({"status": "ok"})
