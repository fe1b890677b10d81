"""Display helpers for listings: schema.org JSON-LD and small formatting rules."""

from __future__ import annotations

import json

from django import template
from django.core.paginator import Page
from django.utils.safestring import SafeString, mark_safe

from .. import practice, seo
from ..models import Location, Practitioner

register = template.Library()

_JSON_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@register.simple_tag(takes_context=True)
def practitioner_json_ld(
    context, practitioner: Practitioner, locations: list[Location]
) -> SafeString:
    """schema.org description of a profile; escaped so no value can close the script tag."""
    request = context["request"]
    data = {
        "@context": "https://schema.org",
        "@type": "Person",
        "name": practitioner.name,
        "honorificSuffix": practitioner.credentials or None,
        "jobTitle": practitioner.profession.name if practitioner.profession else None,
        "url": request.build_absolute_uri(practitioner.get_absolute_url()),
        "telephone": practitioner.phone or None,
        "hasCredential": [
            {"@type": "EducationalOccupationalCredential", "name": record.certification.name}
            for record in practitioner.certification_records.all()
            if record.is_current()
        ],
        "workLocation": [
            {
                "@type": "Place",
                "name": location.name or None,
                "address": {
                    "@type": "PostalAddress",
                    "streetAddress": " ".join(
                        p for p in (location.address_line1, location.address_line2) if p
                    ),
                    "addressLocality": location.city,
                    "addressRegion": location.state,
                    "postalCode": location.postal_code,
                    "addressCountry": "US",
                },
                "geo": {
                    "@type": "GeoCoordinates",
                    "latitude": location.latitude,
                    "longitude": location.longitude,
                }
                if location.latitude is not None
                else None,
            }
            for location in locations
        ],
    }
    return json_ld_script(request, _drop_empty(data))


def json_ld_script(request, data: dict) -> SafeString:
    """``data`` as a JSON-LD block, escaped so no value can close the script tag."""
    payload = json.dumps(data, ensure_ascii=False).translate(_JSON_SCRIPT_ESCAPES)
    # A data block, not a script; it carries the response's CSP nonce so the policy names it.
    # (str() forces django-csp's lazy nonce; until then the object is falsy.)
    nonce = str(request.csp_nonce) if hasattr(request, "csp_nonce") else ""
    nonce_attr = f' nonce="{nonce}"' if nonce else ""
    return mark_safe(f'<script type="application/ld+json"{nonce_attr}>{payload}</script>')


@register.simple_tag(takes_context=True)
def breadcrumbs_json_ld(context, crumbs) -> SafeString:
    """BreadcrumbList JSON-LD for the crumbs the page shows."""
    request = context["request"]
    return json_ld_script(request, seo.breadcrumb_list(request, crumbs))


def _drop_empty(value):
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v not in (None, "", [])}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


@register.filter
def tel_href(phone: str) -> str:
    """'(901) 555-0134' -> 'tel:+19015550134'."""
    digits = "".join(c for c in phone if c.isascii() and c.isdigit())
    if len(digits) == 10:
        digits = "1" + digits
    return f"tel:+{digits}" if digits else ""


@register.filter
def miles(distance: float | None) -> str:
    if distance is None:
        return ""
    return f"{distance:.1f} mi"


@register.filter
def weekly_schedule(hours: list) -> list[tuple[str, str]]:
    """(day, "8:00-12:00, 13:00-18:00" or "Closed"), Monday to Sunday."""
    return practice.weekly_schedule(hours)


@register.filter
def page_numbers(page: Page, around: int = 2) -> list[int | None]:
    """The page numbers a results page links to: the first, a few either side of this one and,
    when the count is exact, the last; None where numbers are skipped (shown as an ellipsis)."""
    paginator = page.paginator
    last = paginator.num_pages
    wanted = {1, *range(page.number - around, page.number + around + 1)}
    if not getattr(paginator, "count_is_capped", False):
        wanted.add(last)
    numbers: list[int | None] = []
    for number in sorted(n for n in wanted if 1 <= n <= last):
        if numbers and numbers[-1] is not None and number > numbers[-1] + 1:
            numbers.append(None)
        numbers.append(number)
    return numbers
