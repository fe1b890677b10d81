"""Display helpers for listings: schema.org JSON-LD and small formatting rules."""

from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.core.paginator import Page
from django.utils.dateformat import format as format_date
from django.utils.safestring import SafeString, mark_safe

from .. import practice, seo
from ..models import Location, Practitioner, PractitionerCertification
from ..search import geo

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


@register.simple_tag
def place_choices(typed: str | None) -> list[dict[str, str]]:
    """The places a city name alone could mean ("Memphis": TN, IN, MI...), to choose from."""
    if not typed:
        return []
    return [
        {
            "label": place.label,
            "city": place.city or "",
            "state_name": geo.STATE_NAMES.get(place.state or "", place.state or ""),
        }
        for place in geo.place_choices(typed)
    ]


# Each search parameter's name on the form and the element an error summary links to.
_SEARCH_FIELDS = {
    "zip": ("ZIP code", "id_zip"),
    "near": ("City, state", "id_near"),
    "lat": ("Your location", "location-error"),
    "lon": ("Your location", "location-error"),
    "radius": ("Within", "id_radius"),
    "condition": ("What's bothering you?", "id_condition"),
    "certification": ("Certified in", "id_certification_0"),
    "match": ("Practitioner must hold", "id_match_all"),
    "profession": ("Profession", "id_profession"),
    "accepting_new_patients": ("Accepting new patients", "id_accepting_new_patients"),
    "telehealth": ("Offers telehealth", "id_telehealth"),
    "q": ("Name contains", "id_q"),
}


@register.simple_tag
def search_errors(form) -> list[dict[str, str]]:
    """One line per field in error, in the form's order: its label, where it is, the message."""
    lines = []
    seen: set[str] = set()
    for name, (label, anchor) in _SEARCH_FIELDS.items():
        errors = form.errors.get(name)
        if errors and anchor not in seen:
            seen.add(anchor)
            lines.append({"label": label, "anchor": anchor, "message": " ".join(errors)})
    return lines


@register.filter
def verified_text(record: PractitionerCertification, date_format: str = "M Y") -> str:
    """ "verified Jun 2026", or, once the check is older than staff trust (the window of
    ``PractitionerCertification.objects.stale()``), "verified over a year ago": a date that
    old reads as current at a glance."""
    if record.verified_on is None:
        return ""
    if record.verification_is_stale():
        return f"verified over {_age(settings.VERIFICATION_MAX_AGE_DAYS)} ago"
    return f"verified {format_date(record.verified_on, date_format)}"


def _age(days: int) -> str:
    if days % 365 == 0 or days % 366 == 0:
        years = days // 365
        return "a year" if years == 1 else f"{years} years"
    if days >= 60:
        return f"{round(days / 30.44)} months"
    return f"{days} days"
