"""The roster review queue: a doubtful roster row beside its candidates, and the listings that
dropped off a newer roster. Staff accept one candidate or none; the decision is recorded by
:func:`practitioners.ingest.roster.decide_review`, the same rule a re-run of the file keeps."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import imports, roster_jobs
from ..ingest.roster import decide_review
from ..models import Certification, ImportJob, RosterImport, RosterReview

# Seconds between the job page's automatic reloads while a task works on it (as the CSV import).
REFRESH_SECONDS = 2

NONE_OF_THEM = "none"


class RosterDecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        required=False,
        widget=forms.RadioSelect,
        help_text="Accept the listing this roster row is, or say it is none of them.",
    )

    class Meta:
        model = RosterReview
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        review = self.instance
        choices = [("", "Decide later")]
        choices += [
            (str(c["practitioner_id"]), f"{c['name']} (score {c['score']:.2f})")
            for c in review.candidates
        ]
        choices.append((NONE_OF_THEM, "None of them"))
        self.fields["decision"].choices = choices

    def clean(self):
        cleaned = super().clean()
        review = self.instance
        if cleaned.get("decision") and review.status != RosterReview.Status.OPEN:
            raise forms.ValidationError("This row was already decided.")
        return cleaned


@admin.register(RosterReview)
class RosterReviewAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "best_candidate", "roster", "decided_by"]
    list_filter = ["status", "kind", "roster"]
    list_select_related = ["roster", "decided_by"]
    search_fields = ["row", "candidates"]
    form = RosterDecisionForm
    readonly_fields = [
        "roster",
        "kind",
        "line",
        "roster_row",
        "side_by_side",
        "status",
        "practitioner",
        "decided_by",
        "decided_at",
    ]
    actions = ["accept_best", "reject_all"]

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if (
            obj is not None
            and obj.kind == RosterReview.Kind.DOUBTFUL
            and obj.status == RosterReview.Status.OPEN
        ):
            fields.append("decision")
        return fields

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Roster row")
    def roster_row(self, review: RosterReview):
        return format_html_join(", ", "{}: {}", review.row.items())

    @admin.display(description="Candidates (best first) and the evidence for each")
    def side_by_side(self, review: RosterReview):
        if not review.candidates:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c["name"],
                    "; ".join(c.get("places", [])),
                    f"{c['score']:.2f}",
                    "; ".join(c["evidence"]),
                )
                for c in review.candidates
            ),
        )
        return format_html(
            "<table><thead><tr><th>Listing</th><th>Clinics</th><th>Score</th><th>Evidence</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Best candidate")
    def best_candidate(self, review: RosterReview) -> str:
        if not review.candidates:
            return "-"
        best = review.candidates[0]
        return f"{best['name']} ({best['score']:.2f})"

    def save_model(self, request, obj, form, change):
        decision = form.cleaned_data.get("decision")
        if not decision:
            return
        try:
            decide_review(
                review=obj,
                practitioner_id=None if decision == NONE_OF_THEM else int(decision),
                user=request.user,
            )
        except ValueError as error:
            self.message_user(request, str(error), level=messages.ERROR)

    def _decide(self, request, queryset, *, best: bool) -> None:
        done, refused = 0, []
        for review in queryset.filter(
            kind=RosterReview.Kind.DOUBTFUL, status=RosterReview.Status.OPEN
        ):
            choice = review.candidates[0]["practitioner_id"] if best and review.candidates else None
            try:
                decide_review(review=review, practitioner_id=choice, user=request.user)
                done += 1
            except ValueError as error:
                refused.append(f"line {review.line}: {error}")
        self.message_user(request, f"Decided {done} row(s).")
        if refused:
            self.message_user(request, "Not decided: " + "; ".join(refused), level=messages.WARNING)

    @admin.action(
        description="Accept the best candidate of each selected row", permissions=["change"]
    )
    def accept_best(self, request, queryset):
        self._decide(request, queryset, best=True)

    @admin.action(
        description="None of them: the selected rows match no listing", permissions=["change"]
    )
    def reject_all(self, request, queryset):
        self._decide(request, queryset, best=False)


# --- Uploading a roster: a job of the CSV import's machinery (practitioners/roster_jobs.py) ---


class RosterUploadForm(forms.Form):
    file = forms.FileField(
        label="Roster file (CSV)",
        help_text="A header row, then one row a person: a name and a state, ZIP or phone, or an "
        "NPI (see docs/roster.md).",
    )
    technique = forms.ModelChoiceField(
        queryset=Certification.objects.filter(parent=None).order_by("name"),
        to_field_name="slug",
        help_text="The technique the body certifies; each row's level is one of its levels.",
    )
    as_of = forms.DateField(
        label="Roster date",
        help_text="The date of the roster: certificates are verified on it. YYYY-MM-DD.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    create_unmatched = forms.BooleanField(
        required=False,
        label="Create unmatched rows as pending listings",
        help_text="Off: unmatched rows are only listed in the report.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > imports.max_upload_bytes():
            raise forms.ValidationError(imports.too_big_message(upload.size))
        upload.seek(0)
        problem = roster_jobs.header_problem(upload.read(roster_jobs.HEADER_BYTES))
        upload.seek(0)
        if problem:
            raise forms.ValidationError(problem)
        return upload


@admin.register(RosterImport)
class RosterImportAdmin(admin.ModelAdmin):
    """The rosters imported (one a technique and date) and the upload of a new one."""

    list_display = ["__str__", "technique", "as_of", "file_name", "summary_line", "imported_at"]
    list_filter = ["technique"]
    list_select_related = ["technique"]
    readonly_fields = ["technique", "as_of", "body", "file_name", "summary_line", "imported_at"]
    fields = readonly_fields
    change_list_template = "admin/practitioners/rosterimport/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False  # a roster comes in through the upload, never typed in

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="Summary")
    def summary_line(self, roster: RosterImport) -> str:
        s = roster.summary or {}
        if not s:
            return "-"
        return (
            f"{s.get('rows_read', 0):,} rows: {s.get('matched_by_npi', 0):,} by NPI, "
            f"{s.get('matched_confidently', 0):,} confident, {s.get('sent_to_review', 0):,} "
            f"review, {s.get('unmatched', 0):,} unmatched"
        )

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="practitioners_rosterimport_upload",
            ),
            path(
                "upload/<int:job_id>/",
                self.admin_site.admin_view(self.job_view),
                name="practitioners_rosterimport_job",
            ),
            *super().get_urls(),
        ]

    def _check_upload_permission(self, request: HttpRequest) -> None:
        if not (
            request.user.has_perm("practitioners.add_rosterimport")
            and request.user.has_perm("practitioners.change_practitionercertification")
        ):
            raise PermissionDenied

    def _context(self, request: HttpRequest, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "upload_url": reverse("admin:practitioners_rosterimport_upload"),
        }

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """The upload form (file, technique, roster date) and the roster jobs still kept."""
        self._check_upload_permission(request)
        form = RosterUploadForm(initial={"as_of": timezone.localdate()})
        if request.method == "POST":
            form = RosterUploadForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    job = imports.start_job(
                        upload=data["file"],
                        user=request.user,
                        kind=ImportJob.Kind.ROSTER,
                        options=roster_jobs.job_options(
                            technique=data["technique"],
                            as_of=data["as_of"],
                            create_unmatched=data["create_unmatched"],
                        ),
                    )
                except imports.UploadRefused as refused:
                    form.add_error("file", str(refused))
                else:
                    return HttpResponseRedirect(_job_url(job))
        context = self._context(request, "Import a certifying body's roster")
        context.update(
            form=form,
            max_upload_mb=settings.IMPORT_MAX_UPLOAD_MB,
            expiry_hours=settings.IMPORT_EXPIRY_HOURS,
            jobs=imports.recent_jobs(ImportJob.Kind.ROSTER),
        )
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(
            request, "admin/practitioners/rosterimport/upload.html", context, status=status
        )

    def job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        """One roster job: progress while a task runs, the preview's counts and the confirm
        button, then the import's summary with links to the review queue. POST confirms."""
        self._check_upload_permission(request)
        job = (
            ImportJob.objects.filter(pk=job_id, kind=ImportJob.Kind.ROSTER)
            .select_related("created_by")
            .first()
        )
        if job is None:
            raise Http404("No such roster upload (uploads are kept for a limited time).")
        expired = job.expires_at <= timezone.now()
        verdict = imports.verdict_of(job)
        imports.show_progress(job)  # a running task's figures, from its progress file
        status = 200
        if request.method == "POST":
            if job.state != ImportJob.State.PREVIEWED:
                self.message_user(
                    request,
                    "This roster's import has already been started; its progress and summary "
                    "are below.",
                    messages.WARNING,
                )
                return HttpResponseRedirect(_job_url(job))
            if expired:
                self.message_user(
                    request,
                    "This upload has expired; please upload the file again.",
                    messages.ERROR,
                )
                status = 400
            elif not verdict.can_import_all:
                self.message_user(
                    request, "This roster cannot be imported (see why below).", messages.ERROR
                )
                status = 400
            elif imports.confirm_job(job=job, skip_bad_rows=False):
                job.refresh_from_db()
                if job.state == ImportJob.State.IMPORTED:
                    self.message_user(request, f"Imported. {job.result['summary']}")
                else:
                    self.message_user(request, "Importing; this page shows the progress.")
                return HttpResponseRedirect(_job_url(job))
            else:
                self.message_user(request, "This roster can no longer be imported.", messages.ERROR)
                status = 400
        result = job.result or {}
        context = self._context(request, f"Roster {job.file_name}")
        context.update(
            job=job,
            options=job.options,
            verdict=verdict,
            expired=expired,
            refresh_seconds=REFRESH_SECONDS if job.is_running else None,
            preview=job.preview or {},
            result=result,
            reviews_url=(
                reverse("admin:practitioners_rosterreview_changelist")
                + f"?roster__id__exact={result['roster_id']}&status__exact=open"
                if result.get("roster_id")
                else ""
            ),
        )
        return TemplateResponse(
            request, "admin/practitioners/rosterimport/job.html", context, status=status
        )


def _job_url(job: ImportJob) -> str:
    return reverse("admin:practitioners_rosterimport_job", args=[job.pk])
