"""The possible-duplicates page: pairs side by side, merge or dismiss."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .. import curation
from ..models import (
    Practitioner,
)

DUPLICATES_PER_PAGE = 50


class DuplicatesPage:
    """Adds the duplicates page to the practitioner admin."""

    def duplicates_urls(self) -> list:
        return [
            path(
                "duplicates/",
                self.admin_site.admin_view(self.duplicates_view),
                name="practitioners_practitioner_duplicates",
            )
        ]

    def duplicates_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._act_on_duplicate(request)
        only = request.GET.get("id", "")
        if only.isdigit():
            practitioner = Practitioner.objects.filter(pk=only).first()
            pairs = curation.possible_duplicates_of(practitioner) if practitioner else []
        else:
            pairs = curation.find_possible_duplicates()
        page = Paginator(pairs, DUPLICATES_PER_PAGE).get_page(request.GET.get("page"))
        return TemplateResponse(
            request,
            "admin/practitioners/practitioner/duplicates.html",
            {
                **self.admin_site.each_context(request),
                "title": "Possible duplicate listings",
                "opts": self.opts,
                "page": page,
                "only": only if only.isdigit() else "",
                "can_merge": self.has_delete_permission(request),
            },
        )

    def _act_on_duplicate(self, request: HttpRequest) -> HttpResponse:
        back = request.POST.get("next") or reverse("admin:practitioners_practitioner_duplicates")
        if not back.startswith("/"):
            back = reverse("admin:practitioners_practitioner_duplicates")
        try:
            first = Practitioner.objects.get(pk=int(request.POST.get("first", "")))
            second = Practitioner.objects.get(pk=int(request.POST.get("second", "")))
        except (ValueError, Practitioner.DoesNotExist):
            self.message_user(request, "That pair no longer exists.", messages.WARNING)
            return HttpResponseRedirect(back)
        decision = request.POST.get("decision")
        if decision == "dismiss":
            curation.dismiss_duplicate(first=first, second=second, user=request.user)
            self.message_user(request, f"{first} and {second} are marked as different.")
        elif decision in {"keep_first", "keep_second"}:
            if not self.has_delete_permission(request):
                raise PermissionDenied
            keep, remove = (first, second) if decision == "keep_first" else (second, first)
            curation.merge_practitioners(keep=keep, remove=remove, user=request.user)
            self.message_user(request, f"Merged {remove} into {keep}.")
        else:
            self.message_user(request, "Choose merge or dismiss.", messages.ERROR)
        return HttpResponseRedirect(back)
