"""Where coordinates come from.

Today: the offline ZIP centroid (``GEOCODER=zip``). The geocoding issue adds real providers
through geopy behind the same functions.
"""

from __future__ import annotations

from django.utils import timezone

from . import geo
from .models import Location


def place_at_zip_centroid(location: Location) -> bool:
    """Put ``location`` at its ZIP centroid (precision "zip"). False when the ZIP is unknown;
    the location then keeps whatever coordinates it had."""
    centroid = geo.zip_centroid(location.postal_code)
    if centroid is None:
        location.geocode_status = Location.GeocodeStatus.FAILED
        location.geocode_error = f"ZIP code {location.postal_code} is not in the ZIP database"
        return False
    location.latitude, location.longitude = centroid.latitude, centroid.longitude
    location.precision = Location.Precision.ZIP
    location.geocode_status = Location.GeocodeStatus.OK
    location.geocode_provider = "zip"
    location.geocoded_at = timezone.now()
    return True
