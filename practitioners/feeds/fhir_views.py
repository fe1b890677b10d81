"""/fhir/: thin views over ``fhir_search`` (what matches) and ``fhir`` (what it looks like).

Answers are ``application/fhir+json``; ``_format`` may ask for json, application/json or
application/fhir+json and nothing else (we serve no XML). Errors are OperationOutcomes: 400
for a parameter we cannot honour, 404 for an unknown type or id.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import fhir, fhir_search
from .fhir_search import FhirError

CONTENT_TYPE = "application/fhir+json; charset=utf-8"
FORMATS = {"json", "application/json", "application/fhir+json", "fhir+json"}


def _answer(resource: dict, status: int = 200) -> HttpResponse:
    if settings.FHIR_CHECK_RESPONSES:
        fhir.check(resource)
    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body, status=status, content_type=CONTENT_TYPE)


def _outcome(error: FhirError) -> HttpResponse:
    return _answer(fhir.operation_outcome(error.code, error.diagnostics), status=error.status)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("fhir-metadata")).removesuffix("metadata")


def _check_format(request: HttpRequest) -> None:
    requested = request.GET.getlist("_format")
    for value in requested:
        if value.strip().lower() not in FORMATS:
            raise fhir_search.invalid(f"_format: this server answers JSON only, not {value!r}.")


@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    try:
        _check_format(request)
    except FhirError as error:
        return _outcome(error)
    return _answer(fhir.capability_statement(base_url=_base_url(request), date=timezone.now()))


@require_GET
def search(request: HttpRequest, kind: str) -> HttpResponse:
    try:
        _check_format(request)
        page = fhir_search.search(kind, request.GET)
    except FhirError as error:
        return _outcome(error)
    next_url = None
    if page.next_params is not None:
        params = request.GET.copy()
        params.pop("_cursor", None)
        params.pop("_page", None)
        for name, value in page.next_params.items():
            params[name] = value
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return _answer(
        fhir.bundle(
            self_url=request.build_absolute_uri(),
            next_url=next_url,
            base_url=_base_url(request),
            matches=page.matches,
            included=page.included,
            total=page.total,
        )
    )


@require_GET
def read(request: HttpRequest, kind: str, resource_id: str) -> HttpResponse:
    try:
        _check_format(request)
        resource = fhir_search.read(kind, resource_id)
    except FhirError as error:
        return _outcome(error)
    return _answer(resource)
