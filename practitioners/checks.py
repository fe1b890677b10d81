"""System checks for running in production."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@checks.register(checks.Tags.caches)
def shared_cache_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Without a shared cache each server process keeps its own rate-limit counts."""
    if settings.DEBUG or settings.TESTING:
        return []
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in PER_PROCESS_CACHES:
        return [
            checks.Warning(
                "The cache is per process, so the public forms' rate limits are counted "
                "separately in each server process (and reset when one restarts).",
                hint="Set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to share them.",
                id="practitioners.W001",
            )
        ]
    return []
