"""Is the process alive (/healthz), can it serve (/readyz), and the answer every page gives while
the database cannot be reached (503 with Retry-After, never a 500 and never the driver's text).

Readiness checks are listed in ``settings.READINESS_CHECKS`` (dotted paths). A check is a function
that returns when its dependency answers and raises when it does not; it is reported under its
name without the ``check_`` prefix, or under the name given by ``CheckFailed``. Error details go
to the log only: a public endpoint never shows hosts, ports, roles or database names.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.module_loading import import_string
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("practitioners.health")


class CheckFailed(Exception):
    """Raised by a check to report the failure under a more precise name (e.g. a replica)."""

    def __init__(self, name: str, cause: BaseException | None = None) -> None:
        super().__init__(name)
        self.name = name
        self.cause = cause


def check_database() -> None:
    """The primary and every read replica answer a query."""
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as error:
            raise CheckFailed("database" if alias == "default" else alias, error) from error


def check_cache() -> None:
    """The shared cache (Redis in production) stores and returns a value."""
    value = secrets.token_hex(8)
    cache.set("readyz", value, timeout=10)
    if cache.get("readyz") != value:
        raise RuntimeError("the cache did not return what was stored")


def check_task_queue() -> None:
    """The task queue takes work. In production (the database backend) the queue is a table in the
    same PostgreSQL: if it does not answer, nothing a request enqueues (a geocode, an e-mail, an
    import) would be kept. The workers themselves are not asked: systemd restarts them, and the
    web server stays ready meanwhile, since queued tasks simply wait for them."""
    from django_tasks import task_backends
    from django_tasks_db import DatabaseBackend

    if isinstance(task_backends["default"], DatabaseBackend):
        from django_tasks_db.models import DBTaskResult

        # In a savepoint, so a failed query leaves the request's connection usable.
        with transaction.atomic():
            DBTaskResult.objects.filter(status="READY").exists()


def _checks() -> list[tuple[str, Callable[[], None]]]:
    checks = []
    for path in settings.READINESS_CHECKS:
        function = import_string(path)
        checks.append((function.__name__.removeprefix("check_"), function))
    return checks


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering. It asks nothing of the database or the cache: a
    supervisor restarting the server would not bring either back (that is /readyz's question)."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    failed: list[str] = []
    for name, check in _checks():
        try:
            check()
        except CheckFailed as error:
            results[error.name] = "failed"
            failed.append(error.name)
            logger.warning("readiness check %s failed: %r", error.name, error.cause)
        except Exception as error:
            results[name] = "failed"
            failed.append(name)
            logger.warning("readiness check %s failed: %r", name, error)
        else:
            results[name] = "ok"
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})


def is_database_unavailable(error: BaseException | None) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def unavailable_response(request: HttpRequest, error: BaseException | None = None) -> HttpResponse:
    """503 with Retry-After: JSON for the API, a plain page for people. Rendered without the
    request's context processors, which would ask the database who is signed in."""
    logger.error(
        "database unavailable: %s %s",
        request.method,
        request.path,
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
    retry_after = str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS)
    message = "The directory is briefly unavailable. Please try again in a few seconds."
    if _wants_json(request):
        response: HttpResponse = JsonResponse({"detail": message}, status=503)
    else:
        response = HttpResponse(
            loader.render_to_string("503.html", {"message": message}), status=503
        )
    response["Retry-After"] = retry_after
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage met outside a view (in a middleware) is still a 503."""
    error = sys.exc_info()[1]
    if is_database_unavailable(error):
        return unavailable_response(request, error)
    if _wants_json(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)


def warm_up() -> None:
    """Load what a worker's first request would otherwise wait for (the URLconf and the ZIP
    centroid table, about a second), so a worker started by a reload answers at full speed.
    gunicorn.conf.py calls it in each new worker before it takes requests."""
    from django.urls import get_resolver

    from .search import geo

    get_resolver().url_patterns  # noqa: B018  (imports every view module)
    geo.zip_centroid("38117")
