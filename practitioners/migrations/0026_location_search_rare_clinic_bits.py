"""Partial copies of the search index for the clinics open on weekends or weekday evenings
(issue 17): a search for them reads only those clinics."""

import django.db.models.expressions
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("practitioners", "0025_location_owner_search_practice_bits"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="location",
            index=models.Index(
                condition=models.Q(
                    django.db.models.lookups.Exact(
                        django.db.models.expressions.CombinedExpression(
                            models.F("practice_bits"), "&", models.Value(4)
                        ),
                        4,
                    )
                ),
                fields=[
                    "listed",
                    "latitude_band",
                    "longitude",
                    "latitude",
                    "certification_bits",
                    "expiring_certification_bits",
                    "has_other_clinics",
                    "practice_bits",
                    "language_bits",
                    "payer_bits",
                    "practitioner",
                    "id",
                ],
                name="location_search_weekends",
            ),
        ),
        migrations.AddIndex(
            model_name="location",
            index=models.Index(
                condition=models.Q(
                    django.db.models.lookups.Exact(
                        django.db.models.expressions.CombinedExpression(
                            models.F("practice_bits"), "&", models.Value(2)
                        ),
                        2,
                    )
                ),
                fields=[
                    "listed",
                    "latitude_band",
                    "longitude",
                    "latitude",
                    "certification_bits",
                    "expiring_certification_bits",
                    "has_other_clinics",
                    "practice_bits",
                    "language_bits",
                    "payer_bits",
                    "practitioner",
                    "id",
                ],
                name="location_search_evenings",
            ),
        ),
    ]
