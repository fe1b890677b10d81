"""What search engines and link previews read: canonical URLs and breadcrumbs.

Every page names one canonical URL: its own path and its meaningful parameters, without the
tracking parameters that links pick up on the way (utm_*, gclid, fbclid...), so each page is
indexed once however it was reached.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest

TRACKING_PARAMETERS = frozenset(
    {"gclid", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "igshid", "mc_cid",
     "mc_eid", "_ga", "_gl", "ref", "ref_src", "spm", "s_cid"}
)  # fmt: skip


def is_tracking(parameter: str) -> bool:
    return parameter.lower().startswith("utm_") or parameter.lower() in TRACKING_PARAMETERS


def canonical_url(request: HttpRequest, keep: Collection[str] | None = None) -> str:
    """This page's URL without tracking parameters, empty values or ``page=1``; with ``keep``,
    only those parameters (a profile keeps none: any other query is the same page)."""
    kept = [
        (name, value)
        for name, values in request.GET.lists()
        if not is_tracking(name) and (keep is None or name in keep)
        for value in values
        if value != "" and not (name == "page" and value == "1")
    ]
    query = f"?{urlencode(kept)}" if kept else ""
    return request.build_absolute_uri(request.path) + query


@dataclass(frozen=True)
class Crumb:
    name: str
    path: str


def breadcrumb_list(request: HttpRequest, crumbs: Sequence[Crumb]) -> dict:
    """schema.org BreadcrumbList for these crumbs (the last is the page itself)."""
    return {
        "@context": "https://schema.org",
        "@type": "BreadcrumbList",
        "itemListElement": [
            {
                "@type": "ListItem",
                "position": position,
                "name": crumb.name,
                "item": request.build_absolute_uri(crumb.path),
            }
            for position, crumb in enumerate(crumbs, start=1)
        ],
    }
