"""Claims on listings and the owners' requests: staff approve or reject (with a reason the
claimant is e-mailed), and resolve change and hide requests. The rules are in
``curation/claims.py``; these pages only call them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from ..curation import claims
from ..models import ListingClaim, OwnerRequest
from .common import ask_for_text


class ClaimQueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("review", "To review"), ("dispute", "Disputes")]

    def queryset(self, request, queryset):
        if self.value() == "review":
            return queryset.filter(status__in=ListingClaim.OPEN_FOR_STAFF)
        if self.value() == "dispute":
            return queryset.filter(status=ListingClaim.Status.DISPUTE)
        return queryset


@admin.register(ListingClaim)
class ListingClaimAdmin(admin.ModelAdmin):
    list_display = [
        "practitioner",
        "claimant_email",
        "method",
        "status",
        "listing_npi",
        "npi",
        "licence",
        "created_at",
    ]
    list_filter = [ClaimQueueFilter, "status", "method"]
    list_select_related = ["practitioner", "claimant"]
    search_fields = ["practitioner__name", "claimant__email", "npi", "licence_number"]
    readonly_fields = [
        "practitioner",
        "claimant",
        "method",
        "status",
        "npi",
        "licence_number",
        "licence_state",
        "registry_licences",
        "message",
        "code_sent_to",
        "created_at",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    fields = readonly_fields
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="claimant")
    def claimant_email(self, claim: ListingClaim) -> str:
        return claim.claimant.email or str(claim.claimant)

    @admin.display(description="listing NPI")
    def listing_npi(self, claim: ListingClaim) -> str:
        return claim.practitioner.npi

    @admin.display(description="licence given")
    def licence(self, claim: ListingClaim) -> str:
        if not claim.licence_number:
            return ""
        return f"{claim.licence_number} ({claim.licence_state})"

    @admin.display(description="licences in the NPI registry")
    def registry_licences(self, claim: ListingClaim) -> str:
        licences = claim.practitioner.licences or []
        if not licences:
            return "none recorded"
        return format_html(
            "{}",
            ", ".join(f"{item.get('number', '')} ({item.get('state', '')})" for item in licences),
        )

    @admin.action(description="Approve selected claims (the claimant becomes the owner)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[ListingClaim]):
        approved = 0
        for claim in queryset.select_related("practitioner", "claimant"):
            try:
                claims.approve_claim(claim=claim, user=request.user)
                approved += 1
            except claims.ClaimRefused as refused:
                self.message_user(request, f"{claim}: {refused.message}", messages.WARNING)
        self.message_user(request, f"Approved {approved} claim(s); the claimants were e-mailed.")

    @admin.action(description="Reject selected claims (with a reason the claimant is sent)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[ListingClaim]):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="reject_selected",
                title="Reject claims",
                label="Reason (e-mailed to the claimant)",
                help_text="For example: 'the licence number is not one the registry lists'.",
                submit="Reject",
            )
        reason = request.POST.get("text", "")
        rejected = 0
        for claim in queryset.select_related("practitioner", "claimant"):
            try:
                claims.reject_claim(claim=claim, user=request.user, reason=reason)
                rejected += 1
            except claims.ClaimRefused as refused:
                self.message_user(request, f"{claim}: {refused.message}", messages.WARNING)
        self.message_user(request, f"Rejected {rejected} claim(s); the claimants were e-mailed.")
        return None


class OwnerRequestStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Done or declined")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(status=OwnerRequest.Status.OPEN)
        if self.value() == "closed":
            return queryset.exclude(status=OwnerRequest.Status.OPEN)
        return queryset


@admin.register(OwnerRequest)
class OwnerRequestAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "kind", "field", "value", "status", "created_at"]
    list_filter = [OwnerRequestStateFilter, "kind", "field"]
    list_select_related = ["practitioner"]
    search_fields = ["practitioner__name", "value", "note"]
    readonly_fields = [
        "practitioner",
        "requested_by",
        "kind",
        "field",
        "value",
        "note",
        "status",
        "created_at",
        "resolved_by",
        "resolved_at",
        "resolution_note",
    ]
    fields = readonly_fields
    actions = ["mark_done", "decline"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _resolve(self, request, queryset, *, action: str, done: bool, title: str, submit: str):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action=action,
                title=title,
                label="Note (e-mailed to the owner)",
                help_text="What was done, or why not.",
                submit=submit,
            )
        from ..curation import owners

        count = owners.resolve_requests(
            requests=queryset, user=request.user, done=done, note=request.POST.get("text", "")
        )
        self.message_user(request, f"{count} request(s) {'done' if done else 'declined'}.")
        return None

    @admin.action(description="Mark selected requests done")
    def mark_done(self, request, queryset):
        return self._resolve(
            request, queryset, action="mark_done", done=True, title="Requests done", submit="Done"
        )

    @admin.action(description="Decline selected requests")
    def decline(self, request, queryset):
        return self._resolve(
            request, queryset, action="decline", done=False, title="Decline", submit="Decline"
        )
