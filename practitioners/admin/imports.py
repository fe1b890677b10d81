"""The CSV import in the admin, as a job: upload (stored), preview (a task), one verdict, confirm
(a task, from the stored file), report. Every request here answers at once; the page of a job
refreshes itself while a task works on it, so staff can leave and come back to it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from .. import imports
from ..models import ImportJob
from .forms import ImportUploadForm

# Seconds between the job page's automatic reloads while a task works on it.
REFRESH_SECONDS = 2


class CsvImportPages:
    """Adds the CSV import pages to the practitioner admin."""

    def import_urls(self) -> list:
        return [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_view),
                name="practitioners_practitioner_import_csv",
            ),
            path(
                "import-csv/<int:job_id>/",
                self.admin_site.admin_view(self.import_job_view),
                name="practitioners_practitioner_import_job",
            ),
        ]

    def _check_import_permission(self, request: HttpRequest) -> None:
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied

    def _context(self, request: HttpRequest, title: str) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.opts}

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """The upload form and the imports still kept (running, waiting, done)."""
        self._check_import_permission(request)
        form = ImportUploadForm()
        if request.method == "POST":
            form = ImportUploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    job = imports.start_job(upload=form.cleaned_data["file"], user=request.user)
                except imports.UploadRefused as refused:
                    form.add_error("file", str(refused))
                else:
                    return HttpResponseRedirect(_job_url(job))
        context = self._context(request, "Import practitioners from CSV")
        context.update(
            form=form,
            max_upload_mb=settings.IMPORT_MAX_UPLOAD_MB,
            expiry_hours=settings.IMPORT_EXPIRY_HOURS,
            jobs=imports.recent_jobs(ImportJob.Kind.PRACTITIONERS),
        )
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(
            request, "admin/practitioners/practitioner/import_csv.html", context, status=status
        )

    def import_job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        """One job: its progress while a task runs, then the preview's verdict with the import
        buttons, then the import's report. POST confirms (``mode`` = ``all`` or ``skip``)."""
        self._check_import_permission(request)
        job = (
            ImportJob.objects.filter(pk=job_id, kind=ImportJob.Kind.PRACTITIONERS)
            .select_related("created_by")
            .first()
        )
        if job is None:
            raise Http404("No such import (imports are kept for a limited time).")
        expired = job.expires_at <= timezone.now()
        if request.method == "POST":
            mode = request.POST.get("mode")
            if mode not in ("all", "skip"):
                self.message_user(request, "Choose how to import.", messages.ERROR)
            elif job.state != ImportJob.State.PREVIEWED:
                self.message_user(
                    request,
                    "This import has already been started; its progress and report are below.",
                    messages.WARNING,
                )
            elif expired:
                self.message_user(
                    request,
                    "This upload has expired; please upload the file again.",
                    messages.ERROR,
                )
            elif imports.confirm_job(job=job, skip_bad_rows=mode == "skip"):
                job.refresh_from_db()
                if job.state == ImportJob.State.IMPORTED:
                    self.message_user(request, f"Imported. {job.result['summary']}")
                else:
                    self.message_user(request, "Importing; this page shows the progress.")
            else:
                self.message_user(
                    request, "This preview does not allow that import.", messages.ERROR
                )
            return HttpResponseRedirect(_job_url(job))
        verdict = imports.verdict_of(job)
        imports.show_progress(job)
        context = self._context(request, f"Import of {job.file_name}")
        context.update(
            job=job,
            verdict=verdict,
            expired=expired,
            refresh_seconds=REFRESH_SECONDS if job.is_running else None,
            preview=job.preview or {},
            result=job.result or {},
            good_rows=(job.preview or {}).get("rows", 0)
            - (job.preview or {}).get("error_count", 0),
            import_url=reverse("admin:practitioners_practitioner_import_csv"),
        )
        return TemplateResponse(
            request, "admin/practitioners/practitioner/import_job.html", context
        )


def _job_url(job: ImportJob) -> str:
    return reverse("admin:practitioners_practitioner_import_job", args=[job.pk])
