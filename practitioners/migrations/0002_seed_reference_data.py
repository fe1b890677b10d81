"""Professions, certifications and NPPES taxonomy codes that every database starts with, so an
import works on a fresh database. Data is frozen here on purpose: later edits happen in the admin."""

from django.db import migrations

PROFESSIONS = [
    ("chiropractor", "Chiropractor"),
    ("physical-therapist", "Physical therapist"),
    ("massage-therapist", "Massage therapist"),
    ("athletic-trainer", "Athletic trainer"),
    ("acupuncturist", "Acupuncturist"),
    ("occupational-therapist", "Occupational therapist"),
    ("osteopathic-physician", "Osteopathic physician"),
]

# (slug, name, issuing body, website, parent slug)
CERTIFICATIONS = [
    (
        "art",
        "Active Release Techniques (ART)",
        "Active Release Techniques, LLC",
        "https://www.activerelease.com/",
        None,
    ),
    (
        "art-spine",
        "ART Spine",
        "Active Release Techniques, LLC",
        "https://www.activerelease.com/",
        "art",
    ),
    (
        "art-upper-extremity",
        "ART Upper Extremity",
        "Active Release Techniques, LLC",
        "https://www.activerelease.com/",
        "art",
    ),
    (
        "art-lower-extremity",
        "ART Lower Extremity",
        "Active Release Techniques, LLC",
        "https://www.activerelease.com/",
        "art",
    ),
    (
        "art-nerve-entrapment",
        "ART Nerve Entrapment",
        "Active Release Techniques, LLC",
        "https://www.activerelease.com/",
        "art",
    ),
    (
        "graston",
        "Graston Technique",
        "Graston Technique, LLC",
        "https://grastontechnique.com/",
        None,
    ),
    (
        "graston-m1",
        "Graston Technique M1 (Basic)",
        "Graston Technique, LLC",
        "https://grastontechnique.com/",
        "graston",
    ),
    (
        "graston-m2",
        "Graston Technique M2 (Advanced)",
        "Graston Technique, LLC",
        "https://grastontechnique.com/",
        "graston",
    ),
    (
        "graston-gts",
        "Graston Technique Specialist (GTS)",
        "Graston Technique, LLC",
        "https://grastontechnique.com/",
        "graston",
    ),
    (
        "faktr",
        "FAKTR (Functional and Kinetic Treatment with Rehab)",
        "FAKTR",
        "https://faktr.com/",
        None,
    ),
    ("dry-needling", "Dry needling", "", "", None),
    (
        "mckenzie-mdt",
        "McKenzie Method (MDT)",
        "The McKenzie Institute International",
        "https://mckenzieinstitute.org/",
        None,
    ),
    (
        "fascial-stretch-therapy",
        "Fascial Stretch Therapy (FST)",
        "Stretch to Win Institute",
        "https://stretchtowin.com/",
        None,
    ),
]

# NPPES taxonomy code or prefix -> profession slug
TAXONOMIES = [
    ("111N", "chiropractor", "Chiropractor and its specializations"),
    ("2251", "physical-therapist", "Physical Therapist and its specializations"),
    ("225700000X", "massage-therapist", "Massage Therapist"),
    ("2255A2300X", "athletic-trainer", "Athletic Trainer"),
    ("171100000X", "acupuncturist", "Acupuncturist"),
    ("225X", "occupational-therapist", "Occupational Therapist and its specializations"),
    ("204D00000X", "osteopathic-physician", "Neuromusculoskeletal Medicine & OMM"),
]


def seed(apps, schema_editor):
    Profession = apps.get_model("practitioners", "Profession")
    Certification = apps.get_model("practitioners", "Certification")
    TaxonomyMapping = apps.get_model("practitioners", "TaxonomyMapping")
    professions = {}
    for slug, name in PROFESSIONS:
        professions[slug], _ = Profession.objects.get_or_create(slug=slug, defaults={"name": name})
    certifications = {}
    for slug, name, body, website, parent in CERTIFICATIONS:
        certifications[slug], _ = Certification.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "issuing_body": body,
                "website": website,
                "parent": certifications.get(parent),
            },
        )
    for code, profession, description in TAXONOMIES:
        TaxonomyMapping.objects.get_or_create(
            code_prefix=code,
            defaults={"profession": professions[profession], "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("practitioners", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
