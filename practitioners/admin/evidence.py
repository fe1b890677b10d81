"""Certificate evidence owners uploaded: staff open the file (through a view that checks their
permission; the file has no public URL), then verify or reject it with a reason the owner sees.
The rules are in ``curation/owners.py``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from ..curation import owners
from ..models import CertificationEvidence
from .common import ask_for_text


@admin.register(CertificationEvidence)
class CertificationEvidenceAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "certification", "status", "content_type", "created_at"]
    list_filter = ["status", "certification"]
    list_select_related = ["practitioner", "certification"]
    search_fields = ["practitioner__name", "original_name"]
    readonly_fields = [
        "practitioner",
        "certification",
        "record",
        "open_file",
        "original_name",
        "content_type",
        "size",
        "status",
        "rejection_reason",
        "uploaded_by",
        "created_at",
        "reviewed_by",
        "reviewed_at",
    ]
    fields = readonly_fields
    actions = ["verify_selected", "reject_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/file/",
                self.admin_site.admin_view(self.file_view),
                name="practitioners_certificationevidence_file",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="file")
    def open_file(self, evidence: CertificationEvidence) -> str:
        url = reverse("admin:practitioners_certificationevidence_file", args=[evidence.pk])
        return format_html('<a href="{}">Open {}</a>', url, evidence.original_name)

    def file_view(self, request: HttpRequest, pk: int) -> FileResponse:
        """The evidence itself, only for staff allowed to view evidence."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        evidence = get_object_or_404(CertificationEvidence, pk=pk)
        try:
            handle = evidence.file.open("rb")
        except FileNotFoundError as missing:
            raise Http404("The file is missing.") from missing
        response = FileResponse(handle, content_type=evidence.content_type)
        response["Content-Disposition"] = (
            f'inline; filename="evidence-{evidence.pk}{evidence.extension}"'
        )
        response["Cache-Control"] = "private, no-store"
        return response

    @admin.action(
        description="Verify selected evidence (certificate reviewed)", permissions=["change"]
    )
    def verify_selected(self, request: HttpRequest, queryset):
        done = 0
        for evidence in queryset:
            try:
                owners.verify_evidence(evidence=evidence, user=request.user)
                done += 1
            except owners.OwnerRefused as refused:
                self.message_user(request, f"{evidence}: {refused.message}", messages.WARNING)
        self.message_user(request, f"Verified {done} certification(s).")

    @admin.action(
        description="Reject selected evidence (with a reason the owner sees)",
        permissions=["change"],
    )
    def reject_selected(self, request: HttpRequest, queryset):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="reject_selected",
                title="Reject evidence",
                label="Reason (shown to the owner and e-mailed)",
                help_text="For example: 'the certificate is for another person'.",
                submit="Reject",
            )
        done = 0
        for evidence in queryset:
            try:
                owners.reject_evidence(
                    evidence=evidence, user=request.user, reason=request.POST.get("text", "")
                )
                done += 1
            except owners.OwnerRefused as refused:
                self.message_user(request, f"{evidence}: {refused.message}", messages.WARNING)
        self.message_user(request, f"Rejected {done} piece(s) of evidence; the owners were told.")
        return None
