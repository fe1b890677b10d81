"""Fictional demo listings at real ZIP centroids, written through the normal CSV import."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import (
    Certification,
    CertificationEvidence,
    Practitioner,
    PractitionerCertification,
)
from ..search import geo
from .csv import COLUMNS, ImportReport, import_practitioners
from .demo_practice import fill_practice_details

# The demo's claimed listing (docs/claiming.md says how to sign in as its owner locally).
DEMO_OWNER_EMAIL = "owner@example.com"
DEMO_OWNER_PASSWORD = "demo-owner-passphrase"
DEMO_OWNED_LISTING = "demo-0001"  # the first listing near 38117
# A one-page PDF, so the staff evidence queue has something to open.
DEMO_EVIDENCE = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)

# Metro ZIPs the demo spreads across, with how many listings each gets. Memphis first: the
# directory's founding question is ART + Graston near 38117.
METROS = [
    ("38117", 40),
    ("38104", 12),
    ("38138", 10),
    ("38654", 6),
    ("72301", 4),
    ("10001", 18),
    ("02139", 12),
    ("60614", 16),
    ("30309", 14),
    ("78701", 14),
    ("80202", 14),
    ("98101", 12),
    ("94103", 12),
    ("90026", 14),
    ("33131", 10),
    ("37203", 12),
    ("63108", 10),
    ("55401", 10),
    ("85004", 10),
    ("97205", 10),
    ("59001", 3),
    ("99501", 6),
    ("96813", 6),
    ("82001", 3),
    ("04101", 5),
]
FIRST = [
    "Avery",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Riley",
    "Jamie",
    "Quinn",
    "Drew",
    "Alex",
    "Sam",
    "Cameron",
    "Reese",
    "Rowan",
    "Hayden",
    "Parker",
    "Emerson",
    "Kendall",
    "Logan",
    "Sydney",
    "Dana",
    "Jesse",
    "Blair",
    "Shawn",
    "Terry",
    "Leslie",
    "Kerry",
]
LAST = [
    "Alvarez",
    "Bennett",
    "Chen",
    "Dawson",
    "Ellis",
    "Foster",
    "Garcia",
    "Hughes",
    "Iverson",
    "Jenkins",
    "Kim",
    "Lawson",
    "Morales",
    "Nguyen",
    "O'Neil",
    "Patel",
    "Quinn",
    "Ramirez",
    "Sullivan",
    "Thompson",
    "Underwood",
    "Vasquez",
    "Whitaker",
    "Young",
    "Zimmerman",
    "McDonald",
    "Okafor",
    "Brooks",
]
STREETS = [
    "Poplar Ave",
    "Main St",
    "Park Ave",
    "Oak St",
    "Union Ave",
    "Summer Ave",
    "Walnut Grove Rd",
    "Elm St",
    "Broadway",
    "Highland St",
    "Lake Dr",
    "River Rd",
]
CLINICS = [
    "Spine & Sport",
    "Motion Clinic",
    "Active Recovery",
    "Peak Performance Rehab",
    "Family Chiropractic",
    "Soft Tissue Institute",
    "Move Well Therapy",
    "Bluff City Rehab",
]
PROFESSIONS = [
    ("chiropractor", "DC", 45),
    ("physical-therapist", "PT, DPT", 25),
    ("massage-therapist", "LMT", 15),
    ("athletic-trainer", "ATC", 8),
    ("acupuncturist", "LAc", 4),
    ("occupational-therapist", "OTR/L", 2),
    ("osteopathic-physician", "DO", 1),
]
# Certification bundles and their weights: ART and Graston often come together.
BUNDLES = [
    (["art", "graston"], 10),
    (["art-spine", "art-lower-extremity", "graston-m1"], 8),
    (["art"], 10),
    (["graston-m2"], 8),
    (["art-upper-extremity", "graston-gts", "faktr"], 5),
    (["dry-needling"], 8),
    (["mckenzie-mdt"], 6),
    (["fascial-stretch-therapy"], 4),
    (["faktr", "graston"], 5),
    (["art", "dry-needling"], 5),
    ([], 6),
]


def demo_rows(seed: int = 38117) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    number = 0
    for zip_code, count in METROS:
        centroid = geo.zip_centroid(zip_code)
        assert centroid is not None, zip_code
        for i in range(count):
            number += 1
            profession, credentials, _ = rng.choices(PROFESSIONS, [p[2] for p in PROFESSIONS])[0]
            bundle = rng.choices(BUNDLES, [b[1] for b in BUNDLES])[0][0]
            if zip_code == "38117" and i < 8:
                bundle = ["art", "graston-m1"] if i % 2 else ["art-spine", "graston"]
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            clinics = 2 if rng.random() < 0.2 else 1
            accepting = "true" if rng.random() < 0.8 else "false"
            telehealth = "true" if rng.random() < 0.25 else "false"
            for c in range(clinics):
                lat = centroid.latitude + rng.uniform(-0.08, 0.08) * (1 + c)
                lon = centroid.longitude + rng.uniform(-0.08, 0.08) * (1 + c)
                rows.append(
                    {
                        "external_id": f"demo-{number:04d}",
                        "name": name,
                        "credentials": credentials,
                        "profession": profession,
                        "certifications": ";".join(bundle),
                        "location_name": rng.choice(CLINICS),
                        "address_line1": f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
                        "address_line2": "Suite 200" if rng.random() < 0.2 else "",
                        "city": centroid.city.title(),
                        "state": centroid.state,
                        "postal_code": zip_code,
                        "latitude": f"{lat:.5f}",
                        "longitude": f"{lon:.5f}",
                        "phone": f"({rng.randint(201, 989)}) 555-{rng.randint(100, 199):04d}",
                        "website": f"https://example.com/{number}",
                        "email": f"office{number}@example.com",
                        "accepting_new_patients": accepting,
                        "telehealth": telehealth,
                        "bio": f"{name} treats sports injuries, back pain and repetitive strain "
                        "with hands-on soft-tissue work.",
                        "status": "published",
                    }
                )
    return rows


def seed_demo() -> ImportReport:
    """Load the demo listings (idempotent: re-running changes nothing) and mark some
    certifications verified, some expired, so every badge state shows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(demo_rows())
    buffer.seek(0)
    with transaction.atomic():
        report = import_practitioners(stream=buffer, source=Practitioner.Source.DEMO)
        if report.certifications_added:
            records = PractitionerCertification.objects.filter(
                practitioner__source=Practitioner.Source.DEMO, verified_on__isnull=True
            ).order_by("pk")
            today = dt.date.today()
            for index, record in enumerate(records):
                if index % 3 != 2:
                    record.verified_on = today - dt.timedelta(days=30 * (index % 14))
                    record.verification_source = "Issuing body's public directory"
                record.earned_on = today - dt.timedelta(days=365 * (1 + index % 6))
                if index % 17 == 16:
                    record.expires_on = today - dt.timedelta(days=10)
            PractitionerCertification.objects.bulk_update(
                records, ["verified_on", "verification_source", "earned_on", "expires_on"]
            )
        fill_practice_details()
        seed_demo_owner()
    return report


def seed_demo_owner() -> Practitioner | None:
    """One claimed listing near 38117 whose owner can sign in locally: a verified Graston
    certification, and an ART one the owner added (self-reported, evidence waiting for staff).
    Idempotent. The password is set only with DEBUG on (``make run``); elsewhere the owner
    signs in with an e-mailed code."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile

    listing = Practitioner.objects.filter(external_id=DEMO_OWNED_LISTING).first()
    if listing is None:
        return None
    User = get_user_model()
    owner = User.objects.filter(email=DEMO_OWNER_EMAIL).first()
    if owner is None:
        owner = User.objects.create_user(DEMO_OWNER_EMAIL, DEMO_OWNER_EMAIL, None)
        if settings.DEBUG:
            owner.set_password(DEMO_OWNER_PASSWORD)
        owner.save()
    EmailAddress.objects.get_or_create(
        user=owner, email=DEMO_OWNER_EMAIL, defaults={"verified": True, "primary": True}
    )
    today = timezone.localdate()
    if listing.claimed_by_id is None:
        Practitioner.objects.filter(pk=listing.pk).update(
            claimed_by=owner,
            claimed_at=timezone.now(),
            owner_confirmed_on=today,
            last_confirmed_on=today,
        )
    graston = Certification.objects.get(slug="graston")
    PractitionerCertification.objects.update_or_create(
        practitioner=listing,
        certification=graston,
        defaults={
            "verified_on": today - dt.timedelta(days=20),
            "verification_source": "certificate reviewed",
            "self_reported": True,
        },
    )
    art = Certification.objects.get(slug="art")
    record, created = PractitionerCertification.objects.get_or_create(
        practitioner=listing,
        certification=art,
        defaults={"self_reported": True, "credential_number": "ART-DEMO-1"},
    )
    if created or not record.evidence.exists():
        evidence = CertificationEvidence(
            practitioner=listing,
            certification=art,
            record=record,
            token=f"demo{listing.pk:028d}",
            content_type="application/pdf",
            size=len(DEMO_EVIDENCE),
            original_name="art-certificate.pdf",
            uploaded_by=owner,
        )
        evidence.file.save("evidence", ContentFile(DEMO_EVIDENCE), save=False)
        evidence.save()
    return listing
