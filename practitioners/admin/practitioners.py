"""The practitioner changelist and change page: columns, publishing, actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportActionMixin
from simple_history.admin import SimpleHistoryAdmin

from .. import curation
from ..curation.history import listing_timeline
from ..ingest.export import PractitionerResource
from ..models import (
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
)
from .common import ask_for_text, regeocode, save_location_form
from .duplicates import DuplicatesPage
from .filters import (
    CertificationFilter,
    DuplicateFilter,
    FreshnessFilter,
    GeocodeStatusFilter,
    OpenReportFilter,
    PrecisionFilter,
    StateFilter,
    VerificationFilter,
)
from .forms import PractitionerAdminForm
from .imports import CsvImportPages
from .inlines import CertificationInline, ListingReportInline, LocationInline

TIMELINE_PER_PAGE = 100


@admin.register(Practitioner)
class PractitionerAdmin(DuplicatesPage, CsvImportPages, ExportActionMixin, SimpleHistoryAdmin):
    form = PractitionerAdminForm
    resource_classes = [PractitionerResource]
    import_export_change_list_template = "admin/practitioners/practitioner/change_list_tools.html"
    list_display = [
        "name",
        "profession",
        "certification_list",
        "city_state",
        "status",
        "last_verified",
        "geocode",
        "source",
        "open_reports",
    ]
    list_filter = [
        "status",
        "source",
        "profession",
        CertificationFilter,
        StateFilter,
        VerificationFilter,
        FreshnessFilter,
        GeocodeStatusFilter,
        PrecisionFilter,
        OpenReportFilter,
        DuplicateFilter,
    ]
    list_select_related = ["profession"]
    filter_horizontal = ["languages", "payers"]
    search_fields = [
        "name",
        "email",
        "npi",
        "external_id",
        "locations__city",
        "locations__postal_code",
    ]
    list_per_page = 50
    inlines = [LocationInline, CertificationInline, ListingReportInline]
    readonly_fields = [
        "source",
        "source_updated_on",
        "nppes_fields",
        "possible_duplicates",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "credentials", "profession", "npi", "slug"]}),
        ("Publication", {"fields": ["status", "status_reason"]}),
        (
            "Contact and practice",
            {
                "fields": [
                    "phone",
                    "email",
                    "website",
                    "telehealth",
                    "bio",
                ]
            },
        ),
        (
            "New patients, languages, payment",
            {
                "fields": [
                    ("new_patients", "new_patients_checked_on"),
                    ("languages", "languages_checked_on"),
                    "payers",
                    ("self_pay", "self_pay_min", "self_pay_max"),
                    ("sliding_scale", "hsa_fsa", "payment_checked_on"),
                    "gender",
                ]
            },
        ),
        (
            "Provenance",
            {
                "fields": [
                    "source",
                    "source_updated_on",
                    "external_id",
                    "nppes_fields",
                    "possible_duplicates",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    prepopulated_fields = {"slug": ["name"]}
    actions = [
        "publish_selected",
        "suspend_selected",
        "verify_selected",
        "regeocode_selected",
        "export_admin_action",
    ]
    history_list_display = ["status"]

    class Media:
        css = {"all": ["css/admin-curation.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Practitioner]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("locations", queryset=Location.objects.order_by("pk")),
                Prefetch(
                    "certification_records",
                    queryset=PractitionerCertification.objects.select_related(
                        "certification"
                    ).order_by("certification__name"),
                ),
            )
            .annotate(
                has_open_reports=Exists(
                    ListingReport.objects.filter(
                        practitioner_id=OuterRef("pk"), resolved_at__isnull=True
                    )
                )
            )
        )

    # Columns (all from the prefetched rows: no query per row)

    @admin.display(description="Certifications")
    def certification_list(self, practitioner: Practitioner) -> str:
        return ", ".join(r.certification.name for r in practitioner.certification_records.all())

    @admin.display(description="City")
    def city_state(self, practitioner: Practitioner) -> str:
        locations = list(practitioner.locations.all())
        if not locations:
            return "no clinic"
        first = locations[0]
        more = f" (+{len(locations) - 1})" if len(locations) > 1 else ""
        return f"{first.city}, {first.state}{more}"

    @admin.display(description="Verified (oldest)")
    def last_verified(self, practitioner: Practitioner) -> str:
        records = list(practitioner.certification_records.all())
        if not records:
            return "-"
        if any(r.verified_on is None for r in records):
            return "never"
        return min(r.verified_on for r in records).isoformat()

    @admin.display(description="Geocode")
    def geocode(self, practitioner: Practitioner) -> str:
        locations = list(practitioner.locations.all())
        if not locations:
            return "-"
        return ", ".join(
            sorted({f"{loc.get_geocode_status_display()} / {loc.precision}" for loc in locations})
        )

    @admin.display(description="Reports", boolean=True)
    def open_reports(self, practitioner: Practitioner) -> bool | None:
        return True if getattr(practitioner, "has_open_reports", False) else None

    # Change form

    @admin.display(description="From the NPI registry")
    def nppes_fields(self, practitioner: Practitioner) -> str:
        if not practitioner.nppes_values:
            return "Nothing on this listing came from the NPI registry."
        when = (
            practitioner.source_updated_on.isoformat()
            if practitioner.source_updated_on
            else "date unknown"
        )
        rows = []
        for name, value in sorted(practitioner.nppes_values.items()):
            current = getattr(practitioner, name, None)
            state = "corrected by staff" if current is not None and current != value else "as NPPES"
            rows.append((name, value, state))
        return format_html(
            "<p>NPPES record last updated {}.</p><table><tr><th>field</th><th>NPPES value</th>"
            "<th>now</th></tr>{}</table>",
            when,
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description="Possible duplicates")
    def possible_duplicates(self, practitioner: Practitioner) -> str:
        pairs = curation.possible_duplicates_of(practitioner)
        if not pairs:
            return "None found."
        items = []
        for pair in pairs:
            other = pair.second if pair.first.pk == practitioner.pk else pair.first
            items.append(
                (
                    reverse("admin:practitioners_practitioner_change", args=[other.pk]),
                    str(other),
                    other.get_status_display(),
                    ", ".join(pair.reasons),
                )
            )
        review = reverse("admin:practitioners_practitioner_duplicates") + f"?id={practitioner.pk}"
        return format_html(
            "<ul>{}</ul><p><a href='{}'>Merge or dismiss</a></p>",
            format_html_join("", "<li><a href='{}'>{}</a> ({}): {}</li>", items),
            review,
        )

    @staticmethod
    def _asks_to_publish(form) -> bool:
        """The staff member chose "published" on this form for a listing that was not."""
        published = Practitioner.Status.PUBLISHED
        return form.cleaned_data.get("status") == published and form.initial.get("status") != (
            published
        )

    def save_model(self, request, obj, form, change):
        # Publishing goes through curation.publish_one once the clinics are saved (in
        # save_related), so the rule "a clinic and a profession" sees the inlines as the staff
        # member left them. Until then the listing keeps the status it had.
        if self._asks_to_publish(form):
            obj.status = form.initial.get("status") or Practitioner.Status.DRAFT
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is Location:
            changed_forms = [
                f
                for f in formset.forms
                if f.has_changed() and f not in formset.deleted_forms and f.is_valid()
            ]
            formset.save()
            for location_form in changed_forms:
                if location_form.instance.pk:
                    save_location_form(request, location_form, location_form.instance)
            return
        if formset.model is PractitionerCertification:
            for record_form in formset.forms:
                # Whoever sets the verification date is the one who verified.
                if "verified_on" in record_form.changed_data and record_form.instance.verified_on:
                    record_form.instance.verified_by = request.user
            formset.save()
            return
        if formset.model is ListingReport:
            formset.save()
            for report_form in formset.forms:
                if report_form.cleaned_data.get("resolve"):
                    curation.resolve_report(
                        report=report_form.instance,
                        user=request.user,
                        note=report_form.cleaned_data.get("resolution_note", ""),
                    )
            return
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        practitioner = form.instance
        if self._asks_to_publish(form):
            try:
                curation.publish_one(practitioner=practitioner, user=request.user)
            except curation.PublishRefused as refused:
                self.message_user(
                    request,
                    f"Not published: {'; '.join(refused.reasons)}. Saved as "
                    f"{practitioner.get_status_display().lower()}.",
                    messages.ERROR,
                )
        elif practitioner.status == Practitioner.Status.PUBLISHED:
            problems = curation.publish_problems(practitioner)
            if problems:
                self.message_user(
                    request,
                    f"This published listing now has a problem: {'; '.join(problems)}.",
                    messages.WARNING,
                )

    # Actions

    @admin.action(description="Publish selected listings", permissions=["change"])
    def publish_selected(self, request, queryset):
        outcome = curation.publish(practitioners=queryset, user=request.user)
        if outcome.published:
            self.message_user(request, f"Published {len(outcome.published)} listing(s).")
        if outcome.already_published:
            self.message_user(
                request, f"{len(outcome.already_published)} already published.", messages.INFO
            )
        for refused in outcome.refused[:20]:
            self.message_user(
                request,
                f"Not published: {refused.practitioner} — {'; '.join(refused.reasons)}.",
                messages.ERROR,
            )
        if len(outcome.refused) > 20:
            self.message_user(
                request, f"…and {len(outcome.refused) - 20} more not published.", messages.ERROR
            )

    @admin.action(description="Unpublish (suspend) selected listings", permissions=["change"])
    def suspend_selected(self, request, queryset):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="suspend_selected",
                title="Suspend listings",
                label="Reason",
                help_text="Kept on the listing and in its history, e.g. 'practice closed'.",
                submit="Suspend",
            )
        reason = request.POST.get("text", "").strip()
        if not reason:
            self.message_user(request, "Give a reason to suspend.", messages.ERROR)
            return None
        count = curation.suspend(practitioners=queryset, reason=reason, user=request.user)
        self.message_user(request, f"Suspended {count} listing(s): {reason}.")
        return None

    @admin.action(description="Mark certifications verified today", permissions=["change"])
    def verify_selected(self, request, queryset):
        if "apply" not in request.POST:
            return ask_for_text(
                request,
                queryset,
                action="verify_selected",
                title="Mark certifications verified today",
                label="Verification source",
                help_text="Where you checked them, e.g. 'ART provider directory'.",
                submit="Mark verified",
            )
        try:
            count = curation.verify_certifications(
                practitioners=queryset, source=request.POST.get("text", ""), user=request.user
            )
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        self.message_user(request, f"Marked {count} certification record(s) verified today.")
        return None

    @admin.action(description="Re-geocode their clinics", permissions=["change"])
    def regeocode_selected(self, request, queryset):
        regeocode(self, request, Location.objects.filter(practitioner__in=queryset))

    def get_valid_export_item_pks(self, request: HttpRequest) -> list[str]:
        # The library's default lists every pk in the table; the ids posted are enough, as
        # the export queryset (the admin's own) still decides what may be exported.
        return [pk for pk in request.POST.getlist("export_items") if pk.isdigit()]

    def get_urls(self):
        return [*self.duplicates_urls(), *self.import_urls(), *super().get_urls()]

    def history_view(self, request, object_id, extra_context=None):
        """One timeline for the listing, its clinics and its certificates (with merges that can
        be undone), instead of the listing's own rows only."""
        practitioner = self.get_object(request, unquote(object_id))
        if practitioner is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, practitioner):
            raise PermissionDenied
        page = Paginator(listing_timeline(practitioner.pk), TIMELINE_PER_PAGE).get_page(
            request.GET.get("page")
        )
        return TemplateResponse(
            request,
            "admin/practitioners/practitioner/timeline.html",
            {
                **self.admin_site.each_context(request),
                "title": f"History: {practitioner}",
                "opts": self.opts,
                "original": practitioner,
                "page": page,
                "can_undo": self.has_delete_permission(request),
            },
        )
