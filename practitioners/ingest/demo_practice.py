"""Languages, payment, access, hours and new-patient status for the demo listings.

Realistic rather than uniform: massage therapists rarely bill insurance, Manhattan clinics seldom
have parking, Miami speaks Spanish and Haitian Creole, a few clinics open evenings or weekends,
one in twenty is temporarily closed. Seeded per listing, so a re-run writes nothing new. Near
38117 every filter finds someone; Navajo, for one, finds no one there (but does near Phoenix).
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction

from ..models import Location, Practitioner
from ..practice import Gender, Language, NewPatients, OpeningHours, Payer, interval

T = dt.time
# Weekly schedules (weekday, opens, closes) with their weights; None is "no hours listed".
SCHEDULES: list[tuple[list[tuple[int, T, T]] | None, int]] = [
    ([(d, T(8), T(18)) for d in range(5)], 30),
    ([(d, T(8), T(12)) for d in range(5)] + [(d, T(13), T(17)) for d in range(5)], 15),
    ([(d, T(9), T(17)) for d in (0, 2, 4)] + [(d, T(12), T(20)) for d in (1, 3)], 14),
    ([(d, T(9), T(19)) for d in range(6)], 10),
    ([(d, T(10), T(18)) for d in range(1, 6)], 8),
    ([(d, T(7), T(19)) for d in range(5)] + [(5, T(8), T(13)), (6, T(10), T(14))], 5),
    # A late-night sports massage studio: past midnight from Thursday to Saturday.
    ([(d, T(16), T(0, 30)) for d in (3, 4, 5)], 3),
    (None, 15),
]
# ZIP -> (language code, share of its listings speaking it), beyond English everywhere.
LOCAL_LANGUAGES: dict[str, list[tuple[str, float]]] = {
    "38117": [("es", 0.3), ("vi", 0.08), ("ar", 0.08), ("ase", 0.1)],
    "38138": [("es", 0.25), ("ase", 0.1)],
    "38104": [("es", 0.3), ("ko", 0.1)],
    "10001": [("es", 0.4), ("cmn", 0.2), ("yue", 0.15), ("ru", 0.15), ("ht", 0.05)],
    "33131": [("es", 0.75), ("ht", 0.2), ("pt", 0.15)],
    "94103": [("es", 0.3), ("yue", 0.25), ("tl", 0.2), ("cmn", 0.15)],
    "90026": [("es", 0.55), ("ko", 0.15), ("hy", 0.1), ("tl", 0.1)],
    "96813": [("ja", 0.3), ("tl", 0.25), ("ko", 0.1)],
    "85004": [("es", 0.45), ("nv", 0.15)],
    "60614": [("es", 0.35), ("pl", 0.15)],
    "55401": [("so", 0.15), ("hmn", 0.15), ("es", 0.2)],
    "02139": [("pt", 0.15), ("es", 0.25), ("ht", 0.1)],
}
PRICES = {  # typical self-pay first visit, dollars
    "chiropractor": (60, 120),
    "physical-therapist": (110, 180),
    "massage-therapist": (80, 140),
    "athletic-trainer": (60, 100),
    "acupuncturist": (90, 150),
}
DENSE = {"10001", "02139", "94103", "60614"}  # parking is rare, transit is close


def _checked(rng: random.Random, today: dt.date) -> dt.date | None:
    return None if rng.random() < 0.15 else today - dt.timedelta(days=rng.randint(3, 420))


@transaction.atomic
def fill_practice_details(*, today: dt.date | None = None) -> int:
    """Fill the demo listings that have none yet (a filled one always has a payment date);
    returns how many it filled."""
    today = today or dt.date.today()
    listings = list(
        Practitioner.objects.filter(
            source=Practitioner.Source.DEMO, payment_checked_on__isnull=True, self_pay=False
        )
        .select_related("profession")
        .prefetch_related("locations")
        .order_by("pk")
    )
    languages = {language.code: language for language in Language.objects.all()}
    payers = list(Payer.objects.order_by("slug"))
    by_slug = {payer.slug: payer for payer in payers}
    Speaks, Accepts = Practitioner.languages.through, Practitioner.payers.through
    language_rows, payer_rows, hours = [], [], []
    clinics: list[Location] = []
    for practitioner in listings:
        rng = random.Random(practitioner.external_id)
        own_clinics = list(practitioner.locations.all())
        zip_code = own_clinics[0].postal_code if own_clinics else ""
        profession = practitioner.profession.slug if practitioner.profession else ""
        spoken = {"en"}
        for code, share in LOCAL_LANGUAGES.get(zip_code, [("es", 0.2)]):
            if rng.random() < share:
                spoken.add(code)
        language_rows += [
            Speaks(practitioner_id=practitioner.pk, language_id=languages[code].pk)
            for code in sorted(spoken)
            if code in languages
        ]
        if profession != "massage-therapist" and rng.random() < 0.75:
            accepted = {"medicare", "blue-cross-blue-shield", "unitedhealthcare"}
            accepted = set(rng.sample(sorted(accepted), rng.randint(1, 3)))
            accepted |= set(rng.sample([p.slug for p in payers], rng.randint(0, 4)))
            payer_rows += [
                Accepts(practitioner_id=practitioner.pk, payer_id=by_slug[slug].pk)
                for slug in sorted(accepted)
                if slug in by_slug
            ]
        practitioner.self_pay = rng.random() < 0.7 or profession == "massage-therapist"
        if practitioner.self_pay:
            low, high = PRICES.get(profession, (80, 150))
            start = rng.randrange(low, high, 5)
            practitioner.self_pay_min = start
            practitioner.self_pay_max = start + rng.choice([0, 20, 40, 60])
        practitioner.sliding_scale = rng.random() < 0.12
        practitioner.hsa_fsa = rng.random() < 0.55
        # The CSV's yes/no, refined: some who said no see existing patients (and families).
        weights = [78, 10, 8, 4] if practitioner.accepting_new_patients else [0, 60, 25, 15]
        practitioner.new_patients = rng.choices(list(NewPatients), weights)[0]
        practitioner.gender = rng.choices([Gender.FEMALE, Gender.MALE, ""], [52, 44, 4])[0]
        practitioner.languages_checked_on = _checked(rng, today)
        practitioner.payment_checked_on = _checked(rng, today) or today
        practitioner.new_patients_checked_on = _checked(rng, today)
        for clinic in own_clinics:
            dense = clinic.postal_code in DENSE
            clinic.wheelchair_entrance = rng.random() < 0.78
            clinic.accessible_restroom = clinic.wheelchair_entrance and rng.random() < 0.8
            clinic.parking = rng.random() < (0.15 if dense else 0.8)
            clinic.public_transit = rng.random() < (0.95 if dense else 0.35)
            clinic.accessibility_checked_on = _checked(rng, today)
            schedule = rng.choices([s for s, _ in SCHEDULES], [w for _, w in SCHEDULES])[0]
            if schedule is not None:
                hours += [interval(clinic.pk, *row) for row in schedule]
                clinic.hours_checked_on = _checked(rng, today)
                if rng.random() < 0.05:
                    clinic.reopens_on = today + dt.timedelta(days=rng.randint(5, 40))
            clinics.append(clinic)
    Speaks.objects.bulk_create(language_rows)
    Accepts.objects.bulk_create(payer_rows)
    OpeningHours.objects.bulk_create(hours)
    Practitioner.objects.bulk_update(
        listings,
        [
            "self_pay",
            "self_pay_min",
            "self_pay_max",
            "sliding_scale",
            "hsa_fsa",
            "new_patients",
            "gender",
            "languages_checked_on",
            "payment_checked_on",
            "new_patients_checked_on",
        ],
        batch_size=500,
    )
    Location.objects.bulk_update(
        clinics,
        [
            "wheelchair_entrance",
            "accessible_restroom",
            "parking",
            "public_transit",
            "accessibility_checked_on",
            "hours_checked_on",
            "reopens_on",
        ],
        batch_size=500,
    )
    return len(listings)
