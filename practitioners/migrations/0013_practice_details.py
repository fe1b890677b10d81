"""Languages, payers, payment, accessibility, opening hours and Plan-Net's four new-patient
values. Every yes/no ``accepting_new_patients`` becomes ``accepting`` or ``not_accepting`` (in
listings and in their history); 0014 then drops the yes/no column."""

import django.db.models.deletion
from django.db import migrations, models

# ISO 639-1 where there is one, 639-3 otherwise; the languages most spoken in the US after
# English (Census ACS), and American Sign Language. Frozen here: later edits happen in the admin.
LANGUAGES = [
    ("en", "English"),
    ("es", "Spanish"),
    ("cmn", "Chinese (Mandarin)"),
    ("yue", "Chinese (Cantonese)"),
    ("tl", "Tagalog"),
    ("vi", "Vietnamese"),
    ("ar", "Arabic"),
    ("fr", "French"),
    ("ko", "Korean"),
    ("ru", "Russian"),
    ("ht", "Haitian Creole"),
    ("de", "German"),
    ("hi", "Hindi"),
    ("pt", "Portuguese"),
    ("it", "Italian"),
    ("pl", "Polish"),
    ("ur", "Urdu"),
    ("fa", "Persian"),
    ("ja", "Japanese"),
    ("gu", "Gujarati"),
    ("bn", "Bengali"),
    ("pa", "Punjabi"),
    ("so", "Somali"),
    ("am", "Amharic"),
    ("uk", "Ukrainian"),
    ("el", "Greek"),
    ("he", "Hebrew"),
    ("hy", "Armenian"),
    ("hmn", "Hmong"),
    ("nv", "Navajo"),
    ("ase", "American Sign Language"),
]
PAYERS = [
    ("aetna", "Aetna"),
    ("anthem", "Anthem"),
    ("blue-cross-blue-shield", "Blue Cross Blue Shield"),
    ("cigna", "Cigna"),
    ("humana", "Humana"),
    ("kaiser-permanente", "Kaiser Permanente"),
    ("medicaid", "Medicaid"),
    ("medicare", "Medicare"),
    ("tricare", "TRICARE"),
    ("unitedhealthcare", "UnitedHealthcare"),
    ("workers-compensation", "Workers' compensation"),
    ("auto-insurance", "Auto insurance (personal injury)"),
]


def four_values_from_yes_no(apps, schema_editor):
    for name in ("Practitioner", "HistoricalPractitioner"):
        model = apps.get_model("practitioners", name)
        model.objects.filter(accepting_new_patients=True).update(new_patients="accepting")
        model.objects.filter(accepting_new_patients=False).update(new_patients="not_accepting")


def yes_no_from_four_values(apps, schema_editor):
    # Backwards: only "accepting" was a yes; the two "existing patients" values were a no.
    for name in ("Practitioner", "HistoricalPractitioner"):
        model = apps.get_model("practitioners", name)
        model.objects.update(accepting_new_patients=False)
        model.objects.filter(new_patients="accepting").update(accepting_new_patients=True)


def seed_languages_and_payers(apps, schema_editor):
    Language = apps.get_model("practitioners", "Language")
    Payer = apps.get_model("practitioners", "Payer")
    for code, name in LANGUAGES:
        Language.objects.get_or_create(code=code, defaults={"name": name})
    for slug, name in PAYERS:
        Payer.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [
        ("practitioners", "0017_rosters"),
    ]

    operations = [
        migrations.CreateModel(
            name="Language",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "code",
                    models.CharField(
                        help_text="ISO 639 code, e.g. es, ase.", max_length=3, unique=True
                    ),
                ),
                ("name", models.CharField(max_length=80)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="Payer",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(max_length=60, unique=True)),
                ("name", models.CharField(max_length=120)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="accessibility_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="accessibility confirmed"),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="accessible_restroom",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="hours_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="hours confirmed"),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="parking",
            field=models.BooleanField(default=False, verbose_name="parking on site"),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="public_transit",
            field=models.BooleanField(default=False, verbose_name="near public transit"),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="reopens_on",
            field=models.DateField(
                blank=True,
                help_text="The day the clinic opens again; until then it shows as temporarily closed.",
                null=True,
                verbose_name="temporarily closed until",
            ),
        ),
        migrations.AddField(
            model_name="historicallocation",
            name="wheelchair_entrance",
            field=models.BooleanField(default=False, verbose_name="wheelchair-accessible entrance"),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="gender",
            field=models.CharField(
                blank=True,
                choices=[("female", "Female"), ("male", "Male")],
                help_text="As the NPI registry records it; offered as a search filter, never shown.",
                max_length=6,
            ),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="hsa_fsa",
            field=models.BooleanField(default=False, verbose_name="HSA/FSA cards accepted"),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="languages_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="languages confirmed"),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="new_patients",
            field=models.CharField(
                choices=[
                    ("accepting", "Accepting new patients"),
                    ("not_accepting", "Not accepting new patients"),
                    ("existing_only", "Existing patients only"),
                    ("existing_and_family", "Existing patients and their families"),
                ],
                default="accepting",
                max_length=20,
                verbose_name="new patients",
            ),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="new_patients_checked_on",
            field=models.DateField(
                blank=True, null=True, verbose_name="new-patient status confirmed"
            ),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="payment_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="payment confirmed"),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="self_pay",
            field=models.BooleanField(default=False, verbose_name="self-pay welcome"),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="self_pay_max",
            field=models.PositiveIntegerField(
                blank=True, null=True, verbose_name="first visit up to ($)"
            ),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="self_pay_min",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Typical self-pay first visit.",
                null=True,
                verbose_name="first visit from ($)",
            ),
        ),
        migrations.AddField(
            model_name="historicalpractitioner",
            name="sliding_scale",
            field=models.BooleanField(default=False, verbose_name="sliding-scale fees"),
        ),
        migrations.AddField(
            model_name="location",
            name="accessibility_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="accessibility confirmed"),
        ),
        migrations.AddField(
            model_name="location",
            name="accessible_restroom",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="location",
            name="hours_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="hours confirmed"),
        ),
        migrations.AddField(
            model_name="location",
            name="parking",
            field=models.BooleanField(default=False, verbose_name="parking on site"),
        ),
        migrations.AddField(
            model_name="location",
            name="public_transit",
            field=models.BooleanField(default=False, verbose_name="near public transit"),
        ),
        migrations.AddField(
            model_name="location",
            name="reopens_on",
            field=models.DateField(
                blank=True,
                help_text="The day the clinic opens again; until then it shows as temporarily closed.",
                null=True,
                verbose_name="temporarily closed until",
            ),
        ),
        migrations.AddField(
            model_name="location",
            name="wheelchair_entrance",
            field=models.BooleanField(default=False, verbose_name="wheelchair-accessible entrance"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="gender",
            field=models.CharField(
                blank=True,
                choices=[("female", "Female"), ("male", "Male")],
                help_text="As the NPI registry records it; offered as a search filter, never shown.",
                max_length=6,
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="hsa_fsa",
            field=models.BooleanField(default=False, verbose_name="HSA/FSA cards accepted"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="languages_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="languages confirmed"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="new_patients",
            field=models.CharField(
                choices=[
                    ("accepting", "Accepting new patients"),
                    ("not_accepting", "Not accepting new patients"),
                    ("existing_only", "Existing patients only"),
                    ("existing_and_family", "Existing patients and their families"),
                ],
                default="accepting",
                max_length=20,
                verbose_name="new patients",
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="new_patients_checked_on",
            field=models.DateField(
                blank=True, null=True, verbose_name="new-patient status confirmed"
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="payment_checked_on",
            field=models.DateField(blank=True, null=True, verbose_name="payment confirmed"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="self_pay",
            field=models.BooleanField(default=False, verbose_name="self-pay welcome"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="self_pay_max",
            field=models.PositiveIntegerField(
                blank=True, null=True, verbose_name="first visit up to ($)"
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="self_pay_min",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Typical self-pay first visit.",
                null=True,
                verbose_name="first visit from ($)",
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="sliding_scale",
            field=models.BooleanField(default=False, verbose_name="sliding-scale fees"),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="languages",
            field=models.ManyToManyField(
                blank=True, related_name="practitioners", to="practitioners.language"
            ),
        ),
        migrations.AddField(
            model_name="practitioner",
            name="payers",
            field=models.ManyToManyField(
                blank=True,
                related_name="practitioners",
                to="practitioners.payer",
                verbose_name="insurance accepted",
            ),
        ),
        migrations.CreateModel(
            name="OpeningHours",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "weekday",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (0, "Monday"),
                            (1, "Tuesday"),
                            (2, "Wednesday"),
                            (3, "Thursday"),
                            (4, "Friday"),
                            (5, "Saturday"),
                            (6, "Sunday"),
                        ]
                    ),
                ),
                ("opens", models.TimeField()),
                (
                    "closes",
                    models.TimeField(
                        help_text="At or before the opening time: open past midnight."
                    ),
                ),
                ("start_minute", models.PositiveIntegerField(default=0, editable=False)),
                ("end_minute", models.PositiveIntegerField(default=0, editable=False)),
                (
                    "location",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="opening_hours",
                        to="practitioners.location",
                    ),
                ),
            ],
            options={
                "verbose_name": "opening hours",
                "verbose_name_plural": "opening hours",
                "ordering": ["location", "weekday", "opens"],
                "indexes": [
                    models.Index(
                        fields=["location", "weekday", "start_minute", "end_minute"],
                        name="opening_hours_search",
                    )
                ],
            },
        ),
        migrations.RunPython(four_values_from_yes_no, yes_no_from_four_values),
        migrations.RunPython(seed_languages_and_payers, migrations.RunPython.noop),
    ]
