"""Middleware for running in production: the request log, static files, the browser policies
(CSP, Permissions-Policy) and the 503 answered while the database is unreachable."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

from directory.logging import request_id

from . import health

logger = logging.getLogger("practitioners.requests")

# A proxy's id is kept when it looks like one (nginx's $request_id is 32 hex digits); anything
# else, or nothing, gets a fresh id, so a client cannot inject text into the log.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestLogMiddleware:
    """One JSON line per request (method, path, status, duration, request id); the id comes from
    X-Request-ID or is made here, and is returned in the response's X-Request-ID."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = rid
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id.reset(token)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """whitenoise, with content-hashed files cached for a year (whitenoise says ten)."""

    FOREVER = 365 * 24 * 60 * 60


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in {"http", "https"} and parts.hostname:
        # {s}.tile.example.org style templates name subdomains: allow them all.
        netloc = parts.netloc.replace("{s}", "*")
        return f"{parts.scheme}://{netloc}"
    return None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the map tile host of MAP_TILE_URL allowed as an image
    source (read per response, so a changed setting needs no second place to edit)."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        tiles = _origin(settings.MAP_TILE_URL)
        if tiles and not report_only:
            update = dict(parts.update or {})
            update["img-src"] = [*update.get("img-src", []), tiles]
            parts.update = update
        return parts


class PermissionsPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class DatabaseUnavailableMiddleware:
    """A view that cannot reach the database answers 503 with Retry-After, never a 500.

    Failures outside a view (a middleware reading the session) reach the same answer through
    ``handler500`` (practitioners.health.server_error)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if health.is_database_unavailable(exception):
            return health.unavailable_response(request, exception)
        return None
