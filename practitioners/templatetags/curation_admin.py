"""The curation work queue on the admin index page."""

from __future__ import annotations

from django import template
from django.conf import settings

from .. import curation

register = template.Library()


@register.inclusion_tag("admin/practitioners/dashboard.html", takes_context=True)
def curation_dashboard(context) -> dict:
    request = context.get("request")
    if request is None or not request.user.has_perm("practitioners.view_practitioner"):
        return {"counts": None}
    return {
        "counts": curation.curation_counts(),
        "stale_months": settings.VERIFICATION_MAX_AGE_DAYS // 30,
        "expiry_warning_days": settings.CERTIFICATION_EXPIRY_WARNING_DAYS,
        "stale_after_days": settings.LISTING_STALE_AFTER_DAYS,
    }
