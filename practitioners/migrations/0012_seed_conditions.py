"""About 25 common soft-tissue and joint problems, each linked only to techniques whose own
certifying body names it (the source is that body's page). Frozen here on purpose: later edits
happen in the admin. Careful language: a body "lists" a condition; nothing here claims a cure."""

from django.db import migrations

ART = "art"
GRASTON = "graston"
MCKENZIE = "mckenzie-mdt"

# The bodies' own pages that name the conditions.
SOURCES = {
    ART: "https://www.activerelease.com/what-is-art",
    GRASTON: "https://grastontechnique.com/patients/",
    MCKENZIE: "https://mckenzieinstitute.org/patients/",
}
ART_NOTE = "Active Release Techniques lists {what} among the conditions its providers address."
GRASTON_NOTE = "Graston Technique lists {what} among the conditions its clinicians address."
MCKENZIE_NOTE = "The McKenzie Institute describes the McKenzie Method for {what}."

# (slug, name, synonyms, ICD-10-CM codes, description, [(technique, what the body names)])
CONDITIONS = [
    (
        "piriformis-syndrome",
        "Piriformis syndrome",
        ["pain in the buttock down the leg", "sciatica-like buttock pain", "deep buttock pain"],
        "G57.0",
        "Pain deep in the buttock, sometimes running down the back of the thigh, put down to the "
        "piriformis muscle pressing on the sciatic nerve.",
        [(ART, "sciatica and other nerve entrapments")],
    ),
    (
        "sciatica",
        "Sciatica",
        ["pain down the back of the leg", "leg pain from the back", "sciatic nerve pain"],
        "M54.3, M54.4",
        "Pain along the sciatic nerve, from the lower back or buttock down the back of the leg, "
        "often with tingling or numbness.",
        [(ART, "sciatica"), (MCKENZIE, "back pain and sciatica")],
    ),
    (
        "plantar-fasciitis",
        "Plantar fasciitis",
        ["heel pain", "pain under the heel", "foot arch pain"],
        "M72.2",
        "Pain under the heel or along the arch of the foot, often worst with the first steps in "
        "the morning.",
        [(ART, "plantar fasciitis"), (GRASTON, "plantar fasciitis")],
    ),
    (
        "lateral-epicondylitis",
        "Lateral epicondylitis",
        ["tennis elbow", "pain on the outside of the elbow", "lateral epicondylalgia"],
        "M77.1",
        "Pain on the outside of the elbow where the forearm's extensor tendons attach, often "
        "after repeated gripping.",
        [(ART, "tennis elbow"), (GRASTON, "lateral epicondylitis (tennis elbow)")],
    ),
    (
        "medial-epicondylitis",
        "Medial epicondylitis",
        ["golfer's elbow", "golfers elbow", "pain on the inside of the elbow"],
        "M77.0",
        "Pain on the inside of the elbow where the forearm's flexor tendons attach.",
        [(GRASTON, "medial epicondylitis (golfer's elbow)")],
    ),
    (
        "carpal-tunnel-syndrome",
        "Carpal tunnel syndrome",
        ["numb fingers", "tingling hand", "wrist nerve pain"],
        "G56.0",
        "Numbness, tingling or pain in the thumb and first fingers from pressure on the median "
        "nerve at the wrist.",
        [(ART, "carpal tunnel syndrome"), (GRASTON, "carpal tunnel syndrome")],
    ),
    (
        "it-band-syndrome",
        "IT band syndrome",
        ["iliotibial band syndrome", "ITBS", "outside knee pain"],
        "M76.3",
        "Pain on the outside of the knee or thigh where the iliotibial band runs, common in "
        "runners and cyclists.",
        [(GRASTON, "iliotibial band syndrome")],
    ),
    (
        "rotator-cuff-tendinopathy",
        "Rotator cuff tendinopathy",
        ["rotator cuff tendinitis", "rotator cuff tendonitis", "shoulder tendon pain"],
        "M75.1",
        "Pain in the shoulder from the tendons of the rotator cuff, often when lifting the arm "
        "overhead.",
        [(GRASTON, "rotator cuff tendinosis and tendinitis"), (ART, "shoulder pain")],
    ),
    (
        "shin-splints",
        "Shin splints",
        ["medial tibial stress syndrome", "shin pain", "pain along the shin bone"],
        "M76.89",
        "Pain along the inner edge of the shin bone, common when running more or on harder ground.",
        [(ART, "shin splints"), (GRASTON, "shin splints")],
    ),
    (
        "achilles-tendinopathy",
        "Achilles tendinopathy",
        ["achilles tendinitis", "achilles tendonitis", "back of heel pain"],
        "M76.6",
        "Pain and stiffness in the Achilles tendon at the back of the ankle, often worse in the "
        "morning.",
        [(GRASTON, "Achilles tendinosis and tendinitis")],
    ),
    (
        "low-back-pain",
        "Low back pain",
        ["lower back pain", "lumbago", "back ache", "lumbar strain", "lower back strain"],
        "M54.5",
        "Pain, stiffness or aching in the lower back, the most common reason people see a "
        "manual therapist.",
        [
            (ART, "back pain"),
            (GRASTON, "lumbar sprain and strain"),
            (MCKENZIE, "back pain"),
        ],
    ),
    (
        "neck-pain",
        "Neck pain",
        ["stiff neck", "cervicalgia", "sore neck"],
        "M54.2",
        "Pain or stiffness in the neck, sometimes spreading to the shoulders or upper back.",
        [(MCKENZIE, "neck pain"), (GRASTON, "cervical sprain and strain")],
    ),
    (
        "whiplash",
        "Whiplash (neck sprain)",
        ["whiplash injury", "neck sprain", "cervical sprain"],
        "S13.4",
        "A sprain of the neck's soft tissues after a sudden jolt, such as a car crash from behind.",
        [(GRASTON, "cervical sprain and strain")],
    ),
    (
        "tension-headache",
        "Tension-type headache",
        ["tension headache", "headache", "stress headache"],
        "G44.2",
        "A pressing or tight headache on both sides of the head, often with tight neck and "
        "shoulder muscles.",
        [(ART, "headaches")],
    ),
    (
        "patellofemoral-pain",
        "Patellofemoral pain syndrome",
        ["runner's knee", "pain around the kneecap", "front of knee pain"],
        "M22.2",
        "Pain around or behind the kneecap, often on stairs, squatting or after sitting long.",
        [(GRASTON, "patellofemoral disorders"), (ART, "knee problems")],
    ),
    (
        "knee-pain",
        "Knee pain",
        ["sore knee", "knee problems"],
        "M25.56",
        "Pain in or around the knee from many causes; a practitioner examines which.",
        [(ART, "knee problems"), (MCKENZIE, "problems of the extremities such as the knee")],
    ),
    (
        "shoulder-pain",
        "Shoulder pain",
        ["sore shoulder", "shoulder problems"],
        "M25.51",
        "Pain in or around the shoulder from many causes; a practitioner examines which.",
        [(ART, "shoulder pain"), (MCKENZIE, "problems of the extremities such as the shoulder")],
    ),
    (
        "de-quervains-tenosynovitis",
        "De Quervain's tenosynovitis",
        ["de quervain", "thumb side wrist pain", "mommy thumb"],
        "M65.4",
        "Pain on the thumb side of the wrist from the tendons that move the thumb.",
        [(GRASTON, "De Quervain's syndrome")],
    ),
    (
        "trigger-finger",
        "Trigger finger",
        ["stenosing tenosynovitis", "finger catching", "locking finger"],
        "M65.3",
        "A finger or thumb that catches or locks when bent, from a narrowed tendon sheath.",
        [(GRASTON, "trigger finger")],
    ),
    (
        "fibromyalgia",
        "Fibromyalgia",
        ["widespread pain", "fibrositis"],
        "M79.7",
        "Long-lasting widespread pain and tenderness, often with tiredness and poor sleep; it "
        "is diagnosed and managed by a physician.",
        [(GRASTON, "fibromyalgia")],
    ),
    (
        "myofascial-pain",
        "Myofascial pain syndrome",
        ["trigger points", "muscle knots", "muscle pain"],
        "M79.1",
        "Pain in muscles and their fascia, often with tender spots that refer pain elsewhere.",
        [(GRASTON, "myofascial pain syndromes")],
    ),
    (
        "scar-tissue",
        "Scar tissue after surgery or injury",
        ["scar tissue", "post-surgical scar", "adhesions", "c-section scar", "mastectomy scar"],
        "L90.5",
        "Stiff or tight tissue around a healed scar that can limit movement.",
        [(GRASTON, "scar tissue, including after mastectomy and caesarean section")],
    ),
    (
        "thoracic-outlet-syndrome",
        "Thoracic outlet syndrome",
        ["tos", "arm numbness", "tingling arm"],
        "G54.0",
        "Pain, numbness or tingling in the arm and hand from pressure on nerves or vessels "
        "between the collarbone and first rib.",
        [(ART, "nerve entrapments")],
    ),
    (
        "cubital-tunnel-syndrome",
        "Cubital tunnel syndrome",
        ["ulnar nerve entrapment", "funny bone tingling", "numb little finger"],
        "G56.2",
        "Numbness or tingling in the ring and little fingers from pressure on the ulnar nerve "
        "at the elbow.",
        [(ART, "nerve entrapments")],
    ),
    (
        "tarsal-tunnel-syndrome",
        "Tarsal tunnel syndrome",
        ["tibial nerve entrapment", "burning sole of the foot", "inner ankle tingling"],
        "G57.5",
        "Burning, tingling or numbness in the sole of the foot from pressure on the tibial nerve "
        "behind the inner ankle bone.",
        [(ART, "nerve entrapments")],
    ),
]

NOTES = {ART: ART_NOTE, GRASTON: GRASTON_NOTE, MCKENZIE: MCKENZIE_NOTE}

# What each technique page says the technique is (only where staff have not written it yet).
TECHNIQUE_DESCRIPTIONS = {
    "art": "A soft-tissue method in which the practitioner holds tension on a muscle, tendon, "
    "ligament or nerve while the patient moves to lengthen it. Providers are certified by "
    "Active Release Techniques, LLC, one body region at a time.",
    "art-spine": "The Active Release Techniques certification for the spine and its muscles.",
    "art-upper-extremity": "The Active Release Techniques certification for the shoulder, "
    "arm, wrist and hand.",
    "art-lower-extremity": "The Active Release Techniques certification for the hip, leg, "
    "knee, ankle and foot.",
    "art-nerve-entrapment": "The Active Release Techniques certification for nerves "
    "caught in surrounding tissue, such as at the wrist or the buttock.",
    "graston": "Instrument-assisted soft-tissue mobilisation: the clinician works the tissue "
    "with shaped stainless-steel instruments, together with exercise. Clinicians are trained "
    "by Graston Technique, LLC.",
    "graston-m1": "The first Graston Technique training module (basic).",
    "graston-m2": "The second Graston Technique training module (advanced).",
    "graston-gts": "Graston Technique Specialist: the credential after both modules and an "
    "assessment.",
    "faktr": "Functional and Kinetic Treatment with Rehab: instrument and hands-on soft-tissue "
    "work done while the patient moves, combined with rehabilitation exercise.",
    "dry-needling": "Thin needles inserted into muscle at tender spots. There is no single "
    "certifying body: each state's licensing board sets who may practise it and what training "
    "it needs.",
    "mckenzie-mdt": "Mechanical Diagnosis and Therapy: an assessment of how the back, neck or "
    "limbs respond to repeated movements and positions, leading to exercises the patient does "
    "themself. Taught and credentialled by The McKenzie Institute International.",
    "fascial-stretch-therapy": "Assisted stretching on a table through planes of movement. "
    "Taught and certified by the Stretch to Win Institute.",
}


def seed(apps, schema_editor):
    Certification = apps.get_model("practitioners", "Certification")
    Condition = apps.get_model("practitioners", "Condition")
    ConditionTechnique = apps.get_model("practitioners", "ConditionTechnique")
    for slug, description in TECHNIQUE_DESCRIPTIONS.items():
        Certification.objects.filter(slug=slug, description="").update(description=description)
    techniques = {c.slug: c for c in Certification.objects.filter(slug__in=list(SOURCES))}
    for slug, name, synonyms, codes, description, links in CONDITIONS:
        condition, _ = Condition.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "synonyms": "\n".join(synonyms),
                "icd10_codes": codes,
                "description": description,
            },
        )
        for technique, what in links:
            if technique not in techniques:  # renamed or removed by staff before this ran
                continue
            ConditionTechnique.objects.get_or_create(
                condition=condition,
                certification=techniques[technique],
                defaults={
                    "note": NOTES[technique].format(what=what),
                    "source_url": SOURCES[technique],
                },
            )


class Migration(migrations.Migration):
    dependencies = [("practitioners", "0011_conditions")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
