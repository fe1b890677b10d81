"""The CSV import in the admin: upload, preview with the row-level report, confirm."""

from __future__ import annotations

import io
import secrets

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ..ingest.csv import import_practitioners
from .forms import ImportUploadForm


class CsvImportPages:
    """Adds the CSV import pages to the practitioner admin."""

    def import_urls(self) -> list:
        return [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_view),
                name="practitioners_practitioner_import_csv",
            )
        ]

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
    settings.IMPORT_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (settings.IMPORT_UPLOAD_DIR / f"{token}.csv").write_text(text, encoding="utf-8")
    return token


def _load_upload(token: str) -> str | None:
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        return None
    path = settings.IMPORT_UPLOAD_DIR / f"{token}.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return text
