from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import seo


def site(request: HttpRequest) -> dict:
    """Values every template may need, read once from settings."""
    return {
        "SITE_NAME": "Practitioner Locator",
        "MAP_TILE_URL": settings.MAP_TILE_URL,
        "MAP_TILE_ATTRIBUTION": settings.MAP_TILE_ATTRIBUTION,
        # A page may pass its own; otherwise its URL without tracking parameters.
        "canonical_url": SimpleLazyObject(lambda: seo.canonical_url(request)),
    }
