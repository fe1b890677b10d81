"""Every listing gets a stable external id: new ones from the model's default, existing ones
without one here, as ``pk-<id>``, the id the export already wrote for them (so a file exported
before this migration still finds its listings)."""

from django.db import migrations, models

import practitioners.models

BATCH = 2000


def give_every_listing_an_external_id(apps, schema_editor) -> None:
    Practitioner = apps.get_model("practitioners", "Practitioner")
    db = schema_editor.connection.alias
    listings = Practitioner.objects.using(db)
    # A file exported before may have been imported back already, creating a listing whose
    # external id is another listing's "pk-<id>": that one keeps it, this one gets a suffix.
    taken = set(
        listings.filter(external_id__startswith="pk-").values_list("external_id", flat=True)
    )
    blank = list(listings.filter(external_id="").order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(blank), BATCH):
        batch = []
        for pk in blank[start : start + BATCH]:
            candidate, n = f"pk-{pk}", 1
            while candidate in taken:
                n += 1
                candidate = f"pk-{pk}-{n}"
            taken.add(candidate)
            batch.append(Practitioner(pk=pk, external_id=candidate))
        listings.bulk_update(batch, ["external_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("practitioners", "0012_seed_conditions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="historicalpractitioner",
            name="external_id",
            field=models.CharField(
                blank=True,
                default=practitioners.models.new_external_id,
                help_text="The listing's id in CSV files: an export imported back updates this "
                "listing.",
                max_length=100,
            ),
        ),
        migrations.AlterField(
            model_name="practitioner",
            name="external_id",
            field=models.CharField(
                blank=True,
                default=practitioners.models.new_external_id,
                help_text="The listing's id in CSV files: an export imported back updates this "
                "listing.",
                max_length=100,
            ),
        ),
        migrations.RunPython(give_every_listing_an_external_id, migrations.RunPython.noop),
    ]
