"""TMJ disorders, one of the common problems issue 16 names, left out of 0012 because no
certifying body the directory knows (Active Release Techniques, Graston Technique, The McKenzie
Institute) names it on its own pages. It is seeded without a technique: its page says "No
technique is listed for this condition yet" and a search for it explains the same (the search
form refuses a condition without techniques). Staff add a technique in the admin, with the
body's page as the source, once a body names it. Nothing is changed if staff already made it."""

from django.db import migrations

SLUG = "tmj-disorders"


def seed(apps, schema_editor):
    Condition = apps.get_model("practitioners", "Condition")
    Condition.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": "TMJ disorders",
            "synonyms": "\n".join(
                [
                    "jaw pain",
                    "temporomandibular joint disorder",
                    "TMD",
                    "TMJ",
                    "clicking jaw",
                    "sore jaw",
                ]
            ),
            "icd10_codes": "M26.6",
            "description": "Pain or stiffness in the jaw joint in front of the ear and in the "
            "chewing muscles around it, sometimes with clicking or a jaw that catches when "
            "opening.",
        },
    )


def unseed(apps, schema_editor):
    Condition = apps.get_model("practitioners", "Condition")
    # Only an untouched seed goes: one staff gave a technique stays.
    Condition.objects.filter(slug=SLUG, links__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("practitioners", "0018_roster_jobs_and_blocking")]

    operations = [migrations.RunPython(seed, unseed)]
