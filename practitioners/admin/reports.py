"""Problem reports from the public."""

from __future__ import annotations

from django.contrib import admin

from .. import curation
from ..models import (
    ListingReport,
)
from .common import ask_for_text
from .forms import ReportResolutionForm


class ReportStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(ListingReport)
class ListingReportAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "kind", "created_at", "is_open", "resolved_by"]
    list_filter = [ReportStateFilter, "kind"]
    list_select_related = ["practitioner", "resolved_by"]
    search_fields = ["practitioner__name", "details", "contact_email"]
    readonly_fields = [
        "practitioner",
        "kind",
        "details",
        "contact_email",
        "created_at",
        "resolved_at",
        "resolved_by",
    ]
    form = ReportResolutionForm
    fields = [*readonly_fields, "resolution_note", "resolve"]
    actions = ["resolve_selected"]

    def get_fields(self, request, obj=None):
        # A resolved report keeps its note editable but cannot be resolved twice.
        if obj is not None and obj.resolved_at is not None:
            return [*self.readonly_fields, "resolution_note"]
        return self.fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("resolve"):
            # The same service as the list action and the listing's inline.
            curation.resolve_report(
                report=obj, user=request.user, note=form.cleaned_data.get("resolution_note", "")
            )

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Open", boolean=True)
    def is_open(self, report: ListingReport) -> bool:
        return report.resolved_at is None

    @admin.action(description="Resolve selected reports", permissions=["change"])
    def resolve_selected(self, request, queryset):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="resolve_selected",
                title="Resolve reports",
                label="Resolution note",
                help_text="What was done, e.g. 'address corrected'.",
                submit="Resolve",
            )
        count = curation.resolve_reports(
            reports=queryset, user=request.user, note=request.POST.get("text", "")
        )
        self.message_user(request, f"Resolved {count} report(s).")
        return None
