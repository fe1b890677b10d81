"""The possible-duplicates pages: the list of pairs; one pair compared side by side (every
field, clinics, certificates, history); the merge previewed, confirmed, and undone from the kept
listing's history. Every decision goes through :mod:`practitioners.curation`."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import curation
from ..curation.history import listing_timeline
from ..models import ListingMerge, Practitioner

DUPLICATES_PER_PAGE = 50
HISTORY_ON_COMPARE = 10
# The fields compared side by side, in the order of the change form.
COMPARED_FIELDS = [
    "name",
    "credentials",
    "profession",
    "npi",
    "status",
    "status_reason",
    "phone",
    "email",
    "website",
    "new_patients",
    "telehealth",
    "bio",
    "external_id",
    "slug",
    "source",
    "source_updated_on",
    "created_at",
    "updated_at",
]


def _display(practitioner: Practitioner, name: str) -> str:
    value = getattr(practitioner, name)
    display = getattr(practitioner, f"get_{name}_display", None)
    if display is not None:
        return display()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


class DuplicatesPage:
    """Adds the duplicates pages to the practitioner admin."""

    def duplicates_urls(self) -> list:
        return [
            path(
                "duplicates/",
                self.admin_site.admin_view(self.duplicates_view),
                name="practitioners_practitioner_duplicates",
            ),
            path(
                "duplicates/compare/",
                self.admin_site.admin_view(self.compare_view),
                name="practitioners_practitioner_compare",
            ),
            path(
                "<path:object_id>/undo-merge/<int:merge_id>/",
                self.admin_site.admin_view(require_POST(self.undo_merge_view)),
                name="practitioners_practitioner_undo_merge",
            ),
        ]

    def _back(self, request: HttpRequest) -> str:
        back = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("admin:practitioners_practitioner_duplicates")
        return back

    def duplicates_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._dismiss(request)
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
            },
        )

    def _dismiss(self, request: HttpRequest) -> HttpResponse:
        back = self._back(request)
        pair = self._pair(request.POST)
        if pair is None:
            self.message_user(request, "That pair no longer exists.", messages.WARNING)
            return HttpResponseRedirect(back)
        if request.POST.get("decision") != "dismiss":
            self.message_user(request, "Compare the pair to merge it.", messages.ERROR)
            return HttpResponseRedirect(back)
        first, second = pair
        curation.dismiss_duplicate(first=first, second=second, user=request.user)
        self.message_user(request, f"{first} and {second} are marked as different.")
        return HttpResponseRedirect(back)

    @staticmethod
    def _pair(data) -> tuple[Practitioner, Practitioner] | None:
        try:
            ids = [int(data.get("first", "")), int(data.get("second", ""))]
        except ValueError:
            return None
        found = Practitioner.objects.select_related("profession").in_bulk(ids)
        if len(found) != 2:
            return None
        return found[ids[0]], found[ids[1]]

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        """Both listings side by side; with ``keep`` chosen, the merged listing previewed and a
        confirmation form; a confirmed POST merges."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        pair = self._pair(data)
        if pair is None:
            self.message_user(request, "That pair no longer exists.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:practitioners_practitioner_duplicates"))
        first, second = pair
        keep_id = data.get("keep", "")
        keep = {str(first.pk): first, str(second.pk): second}.get(keep_id)
        can_merge = self.has_delete_permission(request)
        if request.method == "POST":
            if not can_merge:
                raise PermissionDenied
            if keep is None or data.get("confirm") != "yes":
                self.message_user(request, "Choose which listing to keep.", messages.ERROR)
            else:
                remove = second if keep is first else first
                merged = curation.merge_practitioners(keep=keep, remove=remove, user=request.user)
                self.message_user(
                    request,
                    f"Merged #{remove.pk} {remove.name} into {merged}. You can undo it from "
                    "this listing's history.",
                )
                return HttpResponseRedirect(
                    reverse("admin:practitioners_practitioner_change", args=[merged.pk])
                )
        plan = None
        if keep is not None:
            plan = curation.plan_merge(keep=keep, remove=second if keep is first else first)
        rows = [
            (
                Practitioner._meta.get_field(name).verbose_name,
                _display(first, name),
                _display(second, name),
                plan is not None and name in plan.filled,
            )
            for name in COMPARED_FIELDS
        ]
        sides = [
            {
                "listing": listing,
                "clinics": list(listing.locations.order_by("pk")),
                "records": list(
                    listing.certification_records.select_related("certification").order_by(
                        "certification__name"
                    )
                ),
                "history": listing_timeline(listing.pk, limit=HISTORY_ON_COMPARE),
                "reports": listing.reports.count(),
            }
            for listing in (first, second)
        ]
        merged_fields = []
        if plan is not None:
            merged_fields = [
                (
                    Practitioner._meta.get_field(name).verbose_name,
                    _display(plan.keep, name) if name not in plan.filled else plan.filled[name],
                    name in plan.filled,
                )
                for name in COMPARED_FIELDS
            ]
        return TemplateResponse(
            request,
            "admin/practitioners/practitioner/compare.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Compare #{first.pk} and #{second.pk}",
                "opts": self.opts,
                "first": first,
                "second": second,
                "rows": rows,
                "sides": sides,
                "plan": plan,
                "merged_fields": merged_fields,
                "can_merge": can_merge,
            },
        )

    def undo_merge_view(self, request: HttpRequest, object_id: str, merge_id: int) -> HttpResponse:
        if not self.has_delete_permission(request):
            raise PermissionDenied
        merge = get_object_or_404(ListingMerge, pk=merge_id, kept_id=object_id)
        history = reverse("admin:practitioners_practitioner_history", args=[merge.kept_id])
        try:
            restored = curation.undo_merge(merge=merge, user=request.user)
        except curation.MergeRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return HttpResponseRedirect(history)
        except Practitioner.DoesNotExist as missing:
            raise Http404 from missing
        self.message_user(request, f"Merge undone: #{restored.pk} {restored.name} is back.")
        return HttpResponseRedirect(history)
