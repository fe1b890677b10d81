"""The admin is where curation happens: review, publish, verify, correct, merge.

Every write with a rule goes through :mod:`practitioners.curation`, :mod:`practitioners.geocoding`
or :mod:`practitioners.importing`; this module only wires them to pages, filters and actions.
The practitioner changelist runs a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportActionMixin
from simple_history.admin import SimpleHistoryAdmin

from . import curation, geocoding
from .forms import HttpURLField
from .importing import import_practitioners
from .models import (
    Certification,
    DuplicateDismissal,
    GeocodeCacheEntry,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
    TaxonomyMapping,
)
from .resources import PractitionerResource

IMPORT_DIR = Path(tempfile.gettempdir()) / "practitioner-imports"
DUPLICATES_PER_PAGE = 50
ADDRESS_FIELDS = {"address_line1", "address_line2", "city", "state", "postal_code"}


def osm_link(latitude: float | None, longitude: float | None) -> str:
    if latitude is None or longitude is None:
        return "-"
    lat, lon = f"{latitude:.6f}", f"{longitude:.6f}"
    return format_html(
        '<a href="https://www.openstreetmap.org/?mlat={}&amp;mlon={}#map=17/{}/{}" '
        'target="_blank" rel="noopener">Check the pin on OpenStreetMap ({}, {})</a>',
        lat,
        lon,
        lat,
        lon,
        lat,
        lon,
    )


# --- Changelist filters ----------------------------------------------------------------------


class CertificationFilter(admin.SimpleListFilter):
    title = "certification"
    parameter_name = "certification"

    def lookups(self, request, model_admin):
        return list(Certification.objects.values_list("slug", "name"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(
                PractitionerCertification.objects.filter(
                    practitioner_id=OuterRef("pk"), certification__slug=self.value()
                )
            )
        )


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        states = Location.objects.order_by("state").values_list("state", flat=True).distinct()
        return [(state, state) for state in states]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Location.objects.filter(practitioner_id=OuterRef("pk"), state=self.value()))
        )


class VerificationFilter(admin.SimpleListFilter):
    """The staff work queue: certifications never checked, checked over a year ago, or about to
    expire."""

    title = "verification"
    parameter_name = "verification"

    def lookups(self, request, model_admin):
        return [
            ("due", "Needs verification (queue)"),
            ("never", "Never verified"),
            ("stale", f"Verified over {curation.VERIFICATION_MAX_AGE_DAYS // 30} months ago"),
            ("expiring", f"Expiring within {curation.EXPIRY_WARNING_DAYS} days"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "due":
            return curation.needing_verification(queryset, today)
        conditions = {
            "never": {"verified_on__isnull": True},
            "stale": {
                "verified_on__lt": today
                - timezone.timedelta(days=curation.VERIFICATION_MAX_AGE_DAYS)
            },
            "expiring": {
                "expires_on__range": (
                    today,
                    today + timezone.timedelta(days=curation.EXPIRY_WARNING_DAYS),
                )
            },
        }
        if self.value() not in conditions:
            return queryset
        records = PractitionerCertification.objects.filter(
            practitioner_id=OuterRef("pk"), **conditions[self.value()]
        )
        return queryset.filter(Exists(records))


class RecordVerificationFilter(VerificationFilter):
    """The same work queue, on certification records."""

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "due":
            return queryset.filter(curation.verification_due(today))
        if self.value() == "never":
            return queryset.filter(verified_on__isnull=True)
        if self.value() == "stale":
            limit = today - timezone.timedelta(days=curation.VERIFICATION_MAX_AGE_DAYS)
            return queryset.filter(verified_on__lt=limit)
        if self.value() == "expiring":
            end = today + timezone.timedelta(days=curation.EXPIRY_WARNING_DAYS)
            return queryset.filter(expires_on__range=(today, end))
        return queryset


class LocationFieldFilter(admin.SimpleListFilter):
    """Practitioners with at least one clinic whose ``field`` has the chosen value."""

    field = ""

    def lookups(self, request, model_admin):
        return list(Location._meta.get_field(self.field).choices)

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(
                Location.objects.filter(
                    practitioner_id=OuterRef("pk"), **{self.field: self.value()}
                )
            )
        )


class GeocodeStatusFilter(LocationFieldFilter):
    title = "geocode status (any clinic)"
    parameter_name = "geocode_status"
    field = "geocode_status"


class PrecisionFilter(LocationFieldFilter):
    title = "position precision (any clinic)"
    parameter_name = "precision"
    field = "precision"


class OpenReportFilter(admin.SimpleListFilter):
    title = "problem reports"
    parameter_name = "reports"

    def lookups(self, request, model_admin):
        return [("open", "Has open reports")]

    def queryset(self, request, queryset):
        if self.value() != "open":
            return queryset
        return queryset.filter(
            Exists(
                ListingReport.objects.filter(
                    practitioner_id=OuterRef("pk"), resolved_at__isnull=True
                )
            )
        )


class DuplicateFilter(admin.SimpleListFilter):
    title = "possible duplicates"
    parameter_name = "duplicates"

    def lookups(self, request, model_admin):
        return [("yes", "Possible duplicate")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        pairs = curation.find_possible_duplicates()
        ids = {p.first.pk for p in pairs} | {p.second.pk for p in pairs}
        return queryset.filter(pk__in=ids)


# --- Forms and inlines ------------------------------------------------------------------------


def https_formfield(field: models.Field, **kwargs) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class PractitionerAdminForm(forms.ModelForm):
    website = HttpURLField(max_length=300, required=False, assume_scheme="https")

    class Meta:
        model = Practitioner
        formfield_callback = https_formfield
        fields = [
            "name",
            "credentials",
            "profession",
            "npi",
            "slug",
            "status",
            "status_reason",
            "phone",
            "email",
            "website",
            "accepting_new_patients",
            "telehealth",
            "bio",
            "external_id",
        ]


class LocationAdminForm(forms.ModelForm):
    class Meta:
        model = Location
        fields = [
            "practitioner",
            "name",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "phone",
            "latitude",
            "longitude",
        ]

    def save(self, commit: bool = True) -> Location:
        # A new address makes the old pin doubtful: pending, so the geocoder looks again.
        typed = {"latitude", "longitude"} & set(self.changed_data)
        if self.instance.pk and ADDRESS_FIELDS & set(self.changed_data) and not typed:
            self.instance.geocode_status = Location.GeocodeStatus.PENDING
        return super().save(commit)

    def clean(self) -> dict:
        cleaned = super().clean()
        latitude, longitude = cleaned.get("latitude"), cleaned.get("longitude")
        typed = {"latitude", "longitude"} & set(self.changed_data)
        if typed and (latitude is None) != (longitude is None):
            raise forms.ValidationError("Give both latitude and longitude, or neither.")
        if typed and latitude is not None and not geocoding.inside_us(latitude, longitude):
            raise forms.ValidationError(
                f"{latitude:g}, {longitude:g} is outside the United States. "
                "Are latitude and longitude the right way round?"
            )
        return cleaned


class LocationInline(admin.StackedInline):
    model = Location
    form = LocationAdminForm
    extra = 0
    show_change_link = True
    fields = [
        "name",
        ("address_line1", "address_line2"),
        ("city", "state", "postal_code"),
        "phone",
        ("latitude", "longitude"),
        "map_link",
        ("precision", "geocode_status", "geocode_provider", "geocoded_at"),
        "geocode_error",
        "source",
    ]
    readonly_fields = [
        "map_link",
        "precision",
        "geocode_status",
        "geocode_provider",
        "geocoded_at",
        "geocode_error",
        "source",
    ]

    @admin.display(description="Map")
    def map_link(self, location: Location) -> str:
        return osm_link(location.latitude, location.longitude)


class CertificationInline(admin.TabularInline):
    model = PractitionerCertification
    extra = 0
    fields = [
        "certification",
        "credential_number",
        "earned_on",
        "expires_on",
        "verified_on",
        "verified_by",
        "verification_source",
    ]
    readonly_fields = ["verified_by"]
    autocomplete_fields = ["certification"]


class ReportResolutionForm(forms.ModelForm):
    resolve = forms.BooleanField(required=False, label="Resolve now")

    class Meta:
        model = ListingReport
        fields = ["resolution_note"]


class ListingReportInline(admin.TabularInline):
    """Problem reports next to the listing; tick "resolve now" (and add a note) to close one."""

    model = ListingReport
    form = ReportResolutionForm
    extra = 0
    can_delete = False
    fields = [
        "kind",
        "details",
        "contact_email",
        "created_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
        "resolve",
    ]
    readonly_fields = [
        "kind",
        "details",
        "contact_email",
        "created_at",
        "resolved_at",
        "resolved_by",
    ]
    ordering = ["resolved_at", "-created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def save_location_form(request: HttpRequest, form: forms.ModelForm, location: Location) -> None:
    """After staff saved a clinic: coordinates typed by hand become a manual pin; anything else
    goes through the geocoder (which does nothing when the address did not change), once the
    admin's transaction has committed so a slow provider holds no lock and loses no edit."""
    typed = {"latitude", "longitude"} & set(form.changed_data)
    latitude, longitude = form.cleaned_data.get("latitude"), form.cleaned_data.get("longitude")
    if typed and latitude is not None and longitude is not None:
        geocoding.set_manual_position(location=location, latitude=latitude, longitude=longitude)
    else:
        transaction.on_commit(lambda: geocoding.geocode_location(location=location, force=False))


def ask_for_text(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    label: str,
    help_text: str,
    submit: str,
    initial: str = "",
) -> TemplateResponse:
    """The intermediate page of an action that needs one line of text (a reason, a source)."""
    return TemplateResponse(
        request,
        "admin/practitioners/action_text.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "objects": queryset[:50],
            "count": queryset.count(),
            "selected": queryset.values_list("pk", flat=True),
            "action": action,
            "label": label,
            "help_text": help_text,
            "submit": submit,
            "initial": initial,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": queryset.model._meta,
        },
    )


# --- Practitioners ----------------------------------------------------------------------------


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="The columns of import_practitioners.")
    skip_bad_rows = forms.BooleanField(
        required=False, help_text="Import the good rows and report the bad ones."
    )


@admin.register(Practitioner)
class PractitionerAdmin(ExportActionMixin, SimpleHistoryAdmin):
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
        GeocodeStatusFilter,
        PrecisionFilter,
        OpenReportFilter,
        DuplicateFilter,
    ]
    list_select_related = ["profession"]
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
                    "accepting_new_patients",
                    "telehealth",
                    "bio",
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

    def save_model(self, request, obj, form, change):
        # Publishing goes through curation.publish once the clinics are saved, so the rule
        # "a clinic and a profession" sees the inlines as the staff member left them.
        if obj.status == Practitioner.Status.PUBLISHED and "status" in form.changed_data:
            obj.status = form.initial.get("status") or Practitioner.Status.DRAFT
            if obj.status == Practitioner.Status.PUBLISHED:
                obj.status = Practitioner.Status.DRAFT
            request._curation_publish = True
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
        if practitioner.status == Practitioner.Status.PUBLISHED and not getattr(
            request, "_curation_publish", False
        ):
            problems = curation.publish_problems(practitioner)
            if problems:
                self.message_user(
                    request,
                    f"This published listing now has a problem: {'; '.join(problems)}.",
                    messages.WARNING,
                )
        if getattr(request, "_curation_publish", False):
            try:
                curation.publish_one(practitioner=form.instance, user=request.user)
            except curation.PublishRefused as refused:
                self.message_user(
                    request,
                    f"Not published: {'; '.join(refused.reasons)}. Saved as "
                    f"{form.instance.get_status_display().lower()}.",
                    messages.ERROR,
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
        locations = Location.objects.filter(practitioner__in=queryset)
        count = locations.count()
        geocoding.geocode_locations(queryset=locations, force=True)
        self.message_user(request, f"Re-geocoded {count} clinic(s).")

    def get_valid_export_item_pks(self, request: HttpRequest) -> list[str]:
        # The library's default lists every pk in the table; the ids posted are enough, as
        # the export queryset (the admin's own) still decides what may be exported.
        return [pk for pk in request.POST.getlist("export_items") if pk.isdigit()]

    # Extra pages: possible duplicates and the CSV import

    def get_urls(self):
        return [
            path(
                "duplicates/",
                self.admin_site.admin_view(self.duplicates_view),
                name="practitioners_practitioner_duplicates",
            ),
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_view),
                name="practitioners_practitioner_import_csv",
            ),
            *super().get_urls(),
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

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload -> dry run with the row-level report -> confirm -> import, all through
        ``import_practitioners`` so the admin applies exactly the command's rules."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Import practitioners from CSV",
            "opts": self.opts,
        }
        form = ImportUploadForm()
        if request.method == "POST" and request.POST.get("token"):
            return self._confirm_import(request, context)
        if request.method == "POST":
            form = ImportUploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    text = form.cleaned_data["file"].read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    form.add_error("file", "The file is not UTF-8 text. Save it as CSV (UTF-8).")
                else:
                    skip = form.cleaned_data["skip_bad_rows"]
                    report = import_practitioners(
                        stream=_text_stream(text), dry_run=True, skip_bad_rows=skip
                    )
                    can_confirm = not report.errors or (skip and report.rows > len(report.errors))
                    token = _store_upload(text) if can_confirm else ""
                    context.update(report=report, token=token, skip_bad_rows=skip)
        context["form"] = form
        return TemplateResponse(
            request, "admin/practitioners/practitioner/import_csv.html", context
        )

    def _confirm_import(self, request: HttpRequest, context: dict) -> HttpResponse:
        text = _load_upload(request.POST["token"])
        if text is None:
            self.message_user(
                request, "That upload has expired; please upload the file again.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:practitioners_practitioner_import_csv"))
        report = import_practitioners(
            stream=_text_stream(text), skip_bad_rows=request.POST.get("skip_bad_rows") == "1"
        )
        if report.written:
            self.message_user(request, f"Imported. {report.summary()}")
            return HttpResponseRedirect(reverse("admin:practitioners_practitioner_changelist"))
        context.update(report=report, token="", form=ImportUploadForm())
        return TemplateResponse(
            request, "admin/practitioners/practitioner/import_csv.html", context
        )


def _text_stream(text: str) -> io.StringIO:
    return io.StringIO(text, newline="")


def _store_upload(text: str) -> str:
    """Keep an upload between the preview and the confirmation (a file, so every worker on the
    machine can read it back)."""
    IMPORT_DIR.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (IMPORT_DIR / f"{token}.csv").write_text(text, encoding="utf-8")
    return token


def _load_upload(token: str) -> str | None:
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        return None
    path = IMPORT_DIR / f"{token}.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return text


# --- Locations, certification records, reports -------------------------------------------------


@admin.register(Location)
class LocationAdmin(SimpleHistoryAdmin):
    form = LocationAdminForm
    list_display = [
        "one_line_address",
        "practitioner",
        "geocode_status",
        "precision",
        "geocode_provider",
        "geocoded_at",
        "geocode_error_short",
    ]
    list_filter = ["geocode_status", "precision", "source", "state"]
    list_select_related = ["practitioner"]
    search_fields = ["address_line1", "city", "postal_code", "practitioner__name"]
    raw_id_fields = ["practitioner"]
    readonly_fields = [
        "map_link",
        "precision",
        "geocode_status",
        "geocode_provider",
        "geocoded_at",
        "geocode_error",
        "geocoded_address",
        "nppes_key",
    ]
    actions = ["regeocode_selected"]

    @admin.display(description="Map")
    def map_link(self, location: Location) -> str:
        return osm_link(location.latitude, location.longitude)

    @admin.display(description="Geocode error")
    def geocode_error_short(self, location: Location) -> str:
        return location.geocode_error[:80]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        save_location_form(request, form, obj)

    @admin.action(description="Re-geocode selected clinics", permissions=["change"])
    def regeocode_selected(self, request, queryset):
        count = queryset.count()
        geocoding.geocode_locations(queryset=queryset, force=True)
        self.message_user(request, f"Re-geocoded {count} clinic(s).")


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
    fields = [*readonly_fields, "resolution_note"]
    actions = ["resolve_selected"]

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


# --- Reference data ---------------------------------------------------------------------------


@admin.register(Profession)
class ProfessionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "slug", "parent", "issuing_body"]
    list_select_related = ["parent"]
    list_filter = ["issuing_body"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(TaxonomyMapping)
class TaxonomyMappingAdmin(admin.ModelAdmin):
    """NPPES taxonomy code (or prefix) -> profession, used by ``import_nppes``."""

    list_display = ["code_prefix", "profession", "description"]
    list_editable = ["profession", "description"]
    list_select_related = ["profession"]
    list_filter = ["profession"]
    search_fields = ["code_prefix", "description"]


@admin.register(GeocodeCacheEntry)
class GeocodeCacheEntryAdmin(admin.ModelAdmin):
    list_display = ["address_key", "provider", "outcome", "latitude", "longitude", "created_at"]
    list_filter = ["provider", "outcome"]
    search_fields = ["address_key"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DuplicateDismissal)
class DuplicateDismissalAdmin(admin.ModelAdmin):
    list_display = ["first", "second", "dismissed_by", "dismissed_at"]
    list_select_related = ["first", "second", "dismissed_by"]
    raw_id_fields = ["first", "second"]
