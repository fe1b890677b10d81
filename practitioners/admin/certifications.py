"""Certification records: the verification work queue and the verify action."""

from __future__ import annotations

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from .. import curation
from ..models import (
    Practitioner,
    PractitionerCertification,
)
from .common import ask_for_text
from .filters import RecordVerificationFilter


@admin.register(PractitionerCertification)
class PractitionerCertificationAdmin(SimpleHistoryAdmin):
    list_display = [
        "practitioner",
        "certification",
        "credential_number",
        "earned_on",
        "expires_on",
        "verified_on",
        "verified_by",
        "verification_source",
    ]
    list_filter = [RecordVerificationFilter, "certification"]
    list_select_related = ["practitioner", "certification", "verified_by"]
    search_fields = ["practitioner__name", "credential_number"]
    raw_id_fields = ["practitioner"]
    readonly_fields = ["verified_by"]
    actions = ["verify_selected"]

    def save_model(self, request, obj, form, change):
        if obj.verified_on and ("verified_on" in form.changed_data or obj.verified_by_id is None):
            obj.verified_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Mark verified today", permissions=["change"])
    def verify_selected(self, request, queryset):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="verify_selected",
                title="Mark certification records verified today",
                label="Verification source",
                help_text="Where you checked them, e.g. 'ART provider directory'.",
                submit="Mark verified",
            )
        practitioners = Practitioner.objects.filter(pk__in=queryset.values("practitioner_id"))
        try:
            count = curation.verify_certifications(
                practitioners=practitioners,
                source=request.POST.get("text", ""),
                user=request.user,
            )
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        self.message_user(request, f"Marked {count} certification record(s) verified today.")
        return None
