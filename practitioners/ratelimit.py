"""A per-address limit on POSTs to the public forms, counted in Django's configured cache.

Every POST counts, valid or not, so a bot cannot probe the form for free. The count lives in the
cache (``CACHES["default"]``): with Redis (``REDIS_URL``) every worker process sees the same count;
the local-memory default is per process (a system check warns about it in production).

The client's address is the connection's, unless ``TRUSTED_PROXY_HOPS`` says how many proxies
stand in front: then it is the address the outermost of them appended to X-Forwarded-For
(counted from the right, so nothing a client writes into the header is believed).

When the cache cannot be reached, the form is accepted and a warning logged: a real person's
submission is not lost to our outage, and what slips through unthrottled still lands in the
staff review queue (submissions are pending, reports are only reports) behind the honeypot.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SCOPE = "public-forms"
logger = logging.getLogger("practitioners.ratelimit")


def client_ip(request: HttpRequest) -> str:
    """The visitor's address, as far as the trusted proxies in front of us say."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = settings.TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if not forwarded:
        return remote
    # With N proxies the last N entries were written by them; the Nth from the right is the
    # address the outermost proxy saw. Fewer entries: the furthest one recorded.
    return forwarded[-hops] if len(forwarded) >= hops else forwarded[0]


def axes_client_ip(request: HttpRequest) -> str | None:
    """The same address for django-axes's sign-in locks; None (stored as no address) when the
    request has none, as for a test client's force_login."""
    ip = client_ip(request)
    return None if ip == "unknown" else ip


def _key(scope: str, ip: str) -> str:
    return f"ratelimit:{scope}:{ip}"


def count_post(request: HttpRequest, *, scope: str = SCOPE) -> int:
    """Count this request against its address and return the count in the current window."""
    return count_hit(
        scope=scope, identity=client_ip(request), window=settings.PUBLIC_FORM_RATE_WINDOW_SECONDS
    )


def count_hit(*, scope: str, identity: str, window: int) -> int:
    """Count one attempt by ``identity`` (an address, an account) in ``scope``; the count in
    the current window."""
    key = _key(scope, identity)
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
    (a form view then answers 429 with the form as typed), else None. With the cache down the
    POST is let through and a warning logged (see the module's docstring)."""
    try:
        count = count_post(request)
    except Exception as error:
        logger.warning(
            "rate limit not applied to %s: the cache is unavailable (%s)",
            request.path,
            type(error).__name__,
        )
        return None
    if count <= settings.PUBLIC_FORM_RATE_LIMIT:
        return None
    return max(1, settings.PUBLIC_FORM_RATE_WINDOW_SECONDS // 60)


def over_limit(request: HttpRequest, *, scope: str, limit: int, window: int) -> bool:
    """Count this attempt against the address and, when signed in, the account; True when
    either is over ``limit`` in ``window`` seconds. With the cache down it is let through and
    a warning logged, like the public forms."""
    identities = [f"ip:{client_ip(request)}"]
    if request.user.is_authenticated:
        identities.append(f"user:{request.user.pk}")
    try:
        counts = [count_hit(scope=scope, identity=i, window=window) for i in identities]
    except Exception as error:
        logger.warning(
            "rate limit not applied to %s: the cache is unavailable (%s)",
            request.path,
            type(error).__name__,
        )
        return False
    return max(counts) > limit


def too_many(response: HttpResponse) -> HttpResponse:
    """Mark a page answering an over-the-limit POST: 429 and when to come back."""
    response.status_code = 429
    response["Retry-After"] = str(settings.PUBLIC_FORM_RATE_WINDOW_SECONDS)
    return response


def rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 429 with a readable page once an address has POSTed more than the limit."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            minutes = minutes_to_wait(request)
            if minutes is not None:
                response = render(request, "429.html", {"minutes": minutes}, status=429)
                response["Retry-After"] = str(settings.PUBLIC_FORM_RATE_WINDOW_SECONDS)
                return response
        return view(request, *args, **kwargs)

    return wrapper
