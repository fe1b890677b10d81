"""What staff, owners and the public forms are allowed to change, and the rules for it.

``services`` publishes, suspends, verifies, takes submissions and reports; ``duplicates`` finds
and merges possible duplicates. Callers import the functions from here.
"""

from .duplicates import (
    DuplicatePair,
    dismiss_duplicate,
    find_possible_duplicates,
    forget_duplicates_count,
    phone_key,
    possible_duplicates_of,
)
from .merging import MergePlan, MergeRefused, merge_practitioners, plan_merge, undo_merge
from .queues import CurationCounts, curation_counts
from .services import (
    CertificationClaim,
    ClinicSubmission,
    ListingSubmission,
    PublishOutcome,
    PublishRefused,
    needing_verification,
    publish,
    publish_one,
    publish_problems,
    report_problem,
    resolve_report,
    resolve_reports,
    strip_control_characters,
    submit_listing,
    suspend,
    verify_certifications,
)

__all__ = [
    "CertificationClaim",
    "ClinicSubmission",
    "CurationCounts",
    "DuplicatePair",
    "ListingSubmission",
    "MergePlan",
    "MergeRefused",
    "PublishOutcome",
    "PublishRefused",
    "curation_counts",
    "dismiss_duplicate",
    "find_possible_duplicates",
    "forget_duplicates_count",
    "merge_practitioners",
    "needing_verification",
    "phone_key",
    "plan_merge",
    "possible_duplicates_of",
    "publish",
    "publish_one",
    "publish_problems",
    "report_problem",
    "resolve_report",
    "resolve_reports",
    "strip_control_characters",
    "submit_listing",
    "suspend",
    "undo_merge",
    "verify_certifications",
]
