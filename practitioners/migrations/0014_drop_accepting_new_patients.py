"""The yes/no ``accepting_new_patients`` column, replaced by ``new_patients`` in 0013 (a separate
migration so PostgreSQL drops it after the data step's transaction has committed)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("practitioners", "0013_practice_details")]

    operations = [
        migrations.RemoveField(model_name="historicalpractitioner", name="accepting_new_patients"),
        migrations.RemoveField(model_name="practitioner", name="accepting_new_patients"),
    ]
