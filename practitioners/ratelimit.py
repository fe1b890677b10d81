"""A per-IP limit on POSTs to the public forms, counted in Django's configured cache.

Every POST counts, valid or not, so a bot cannot probe the form for free. The count lives in the
cache (``CACHES["default"]``): with a shared cache (Redis, Memcached, the database cache) every
worker sees the same count; the local-memory default is per process, fine for one process.
The client address is ``REMOTE_ADDR``; behind a proxy, have the proxy set it (never trust a
header the client can write).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SCOPE = "public-forms"


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: str, ip: str) -> str:
    return f"ratelimit:{scope}:{ip}"


def count_post(request: HttpRequest, *, scope: str = SCOPE) -> int:
    """Count this request against its IP and return the count in the current window."""
    key = _key(scope, client_ip(request))
    window = settings.PUBLIC_FORM_RATE_WINDOW_SECONDS
    # add() only sets the key when absent, so the window starts at the first POST and is
    # not extended by later ones.
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window)
        return 1


def minutes_to_wait(request: HttpRequest) -> int | None:
    """Count this POST; when the address is over the limit, how many minutes it should wait
    (a form view then answers 429 with the form as typed), else None."""
    if count_post(request) <= settings.PUBLIC_FORM_RATE_LIMIT:
        return None
    return max(1, settings.PUBLIC_FORM_RATE_WINDOW_SECONDS // 60)


def too_many(response: HttpResponse) -> HttpResponse:
    """Mark a page answering an over-the-limit POST: 429 and when to come back."""
    response.status_code = 429
    response["Retry-After"] = str(settings.PUBLIC_FORM_RATE_WINDOW_SECONDS)
    return response


def rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 429 with a readable page once an IP has POSTed more than the limit."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST" and count_post(request) > settings.PUBLIC_FORM_RATE_LIMIT:
            minutes = max(1, settings.PUBLIC_FORM_RATE_WINDOW_SECONDS // 60)
            response = render(request, "429.html", {"minutes": minutes}, status=429)
            response["Retry-After"] = str(settings.PUBLIC_FORM_RATE_WINDOW_SECONDS)
            return response
        return view(request, *args, **kwargs)

    return wrapper
