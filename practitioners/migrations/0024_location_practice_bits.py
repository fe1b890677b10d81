from django.db import migrations, models

# Written out rather than imported, like 0005 and 0006: what the triggers keep right from now on
# (search/index.py, practice_bits_sql). Bits: wheelchair 1, weekday evening 2, weekend 4,
# self-pay 8, sliding scale 16, a closure date set 32; languages and payers one bit each, id % 63.
_PRACTICE = """
    (CASE WHEN practitioners_location.wheelchair_entrance THEN 1 ELSE 0 END)
    + (CASE WHEN practitioners_location.reopens_on IS NULL THEN 0 ELSE 32 END)
    + (CASE WHEN EXISTS (SELECT 1 FROM practitioners_openinghours h
        WHERE h.location_id = practitioners_location.id
        AND h.weekday < 5 AND h.end_minute > h.weekday * 1440 + 1020) THEN 2 ELSE 0 END)
    + (CASE WHEN EXISTS (SELECT 1 FROM practitioners_openinghours h
        WHERE h.location_id = practitioners_location.id AND h.weekday >= 5) THEN 4 ELSE 0 END)
    + COALESCE((SELECT (CASE WHEN self_pay THEN 8 ELSE 0 END)
        + (CASE WHEN sliding_scale THEN 16 ELSE 0 END)
        FROM practitioners_practitioner WHERE id = practitioners_location.practitioner_id), 0)
"""
_BITS = {
    "sqlite": "SUM(DISTINCT 1 << ({} % 63))",
    "postgresql": "bit_or(1::bigint << ({} % 63)::integer)",
}


def fill_practice_bits(apps, schema_editor) -> None:
    bits = _BITS[schema_editor.connection.vendor]
    languages = (
        f"(SELECT COALESCE({bits.format('language_id')}, 0) FROM practitioners_practitioner_languages"
        " WHERE practitioner_id = practitioners_location.practitioner_id)"
    )
    payers = (
        f"(SELECT COALESCE({bits.format('payer_id')}, 0) FROM practitioners_practitioner_payers"
        " WHERE practitioner_id = practitioners_location.practitioner_id)"
    )
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE practitioners_location SET practice_bits = {_PRACTICE}, "
            f"language_bits = {languages}, payer_bits = {payers}"
        )


_SEARCH_FIELDS = [
    "listed",
    "latitude_band",
    "longitude",
    "latitude",
    "certification_bits",
    "expiring_certification_bits",
    "has_other_clinics",
]


class Migration(migrations.Migration):
    dependencies = [
        ("practitioners", "0020_feed_updated_at_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="location", name="location_search"),
        migrations.AddField(
            model_name="location",
            name="practice_bits",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="location",
            name="language_bits",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="location",
            name="payer_bits",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(fill_practice_bits, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="location",
            index=models.Index(
                fields=[
                    *_SEARCH_FIELDS,
                    "practice_bits",
                    "language_bits",
                    "payer_bits",
                    "practitioner",
                    "id",
                ],
                name="location_search",
            ),
        ),
    ]
