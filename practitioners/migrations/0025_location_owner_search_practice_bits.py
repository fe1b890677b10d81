"""The index of a practitioner's other clinics holds their practice bits, so the count's
"first clinic that passes the clinic filters" check reads no clinic row (issue 17)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("practitioners", "0024_location_practice_bits"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="location",
            name="location_owner_search",
        ),
        migrations.AddIndex(
            model_name="location",
            index=models.Index(
                fields=["practitioner", "id", "latitude", "longitude", "practice_bits"],
                name="location_owner_search",
            ),
        ),
    ]
