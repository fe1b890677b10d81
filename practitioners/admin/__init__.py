"""The admin is where curation happens: review, publish, verify, correct, merge.

One module per area. Every write with a rule goes through :mod:`practitioners.curation`,
:mod:`practitioners.geocoding` or :mod:`practitioners.ingest`; these modules only wire them to
pages, filters and actions. Importing the package registers every model admin.
"""

from . import (
    certifications,
    claims,
    conditions,
    evidence,
    locations,
    practice,
    practitioners,
    reference,
    reports,
    rosters,
)

__all__ = [
    "certifications",
    "claims",
    "conditions",
    "evidence",
    "locations",
    "practice",
    "practitioners",
    "reference",
    "reports",
    "rosters",
]
