"""Reconciling a certifying body's roster with the listings (issue 20), on small rosters."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from practitioners.ingest.roster import RosterError, decide_review, import_roster, read_roster
from practitioners.models import (
    Practitioner,
    PractitionerCertification,
    RosterEntry,
    RosterImport,
    RosterReview,
)

from .factories import LocationFactory, PractitionerFactory, certification

pytestmark = pytest.mark.django_db

MAY = dt.date(2026, 5, 1)
NOVEMBER = dt.date(2026, 11, 1)
HEADER = "first_name,last_name,city,state,zip,phone,email,credentials,level,npi\n"


def listing(
    name: str,
    *,
    city: str = "Memphis",
    state: str = "TN",
    postal_code: str = "38117",
    phone: str = "",
    npi: str = "",
    email: str = "",
) -> Practitioner:
    practitioner = PractitionerFactory(name=name, phone=phone, npi=npi, email=email)
    LocationFactory(practitioner=practitioner, city=city, state=state, postal_code=postal_code)
    return practitioner


def run(text: str, *, as_of: dt.date = MAY, technique: str = "graston", **options):
    return import_roster(
        stream=io.StringIO(text), technique=certification(technique), as_of=as_of, **options
    )


def graston_records(practitioner: Practitioner) -> list[PractitionerCertification]:
    return list(
        PractitionerCertification.objects.filter(
            practitioner=practitioner, certification__slug__startswith="graston"
        )
    )


def test_an_npi_on_the_row_settles_the_match_whatever_the_name_says():
    person = listing("Robert Smith", npi="1234567893", city="Nashville", postal_code="37203")
    summary = run(HEADER + "Xavier,Quill,Memphis,TN,38117,,,DC,M2,1234567893\n")
    assert summary.matched_by_npi == 1
    (record,) = graston_records(person)
    assert record.certification.slug == "graston-m2"
    assert record.verified_on == MAY
    assert record.verification_source == "Graston Technique, LLC roster, 2026-05-01"


def test_a_nickname_on_the_roster_matches_the_listed_given_name():
    person = listing("Robert Smith", phone="901-555-0199")
    summary = run(HEADER + "Bob,Smith,Memphis,TN,38117,(901) 555-0199,,DC,M1,\n")
    assert summary.matched_confidently == 1
    assert [r.certification.slug for r in graston_records(person)] == ["graston-m1"]


def test_an_initial_matches_the_full_first_name_when_place_agrees():
    person = listing("John Smith")
    summary = run("name,city,state,zip,level\nJ. Smith,Memphis,TN,38117,GTS\n")
    assert summary.matched_confidently == 1
    assert [r.certification.slug for r in graston_records(person)] == ["graston-gts"]


def test_a_hyphenated_married_name_matches_the_maiden_name_listed():
    person = listing("Jane Doe", phone="901-555-0142")
    summary = run(HEADER + "Jane,Doe-Martin,Memphis,TN,38117,901.555.0142,,,M1,\n")
    assert summary.matched_confidently == 1
    assert graston_records(person)


def test_the_same_name_in_another_state_is_not_matched():
    here = listing("Maria Lopez", city="Austin", state="TX", postal_code="78701")
    decoy = listing("Maria Lopez", city="Memphis", state="TN", postal_code="38117")
    summary = run(HEADER + "Maria,Lopez,Austin,TX,78701,,,DC,M1,\n")
    assert summary.matched_confidently == 1
    assert graston_records(here)
    assert not graston_records(decoy)


def test_a_roster_row_whose_only_namesake_is_in_another_state_stays_unmatched():
    decoy = listing("Maria Lopez", city="Memphis", state="TN", postal_code="38117")
    summary = run(HEADER + "Maria,Lopez,Austin,TX,78701,,,DC,M1,\n")
    assert summary.unmatched == 1
    assert not graston_records(decoy)


def test_twins_in_one_city_with_different_first_names_each_get_their_own_row():
    mary = listing("Mary Jones")
    martha = listing("Martha Jones")
    summary = run(HEADER + "Mary,Jones,Memphis,TN,38117,,,DC,M1,\n")
    assert summary.matched_confidently == 1
    assert graston_records(mary)
    assert not graston_records(martha)


def test_an_initial_shared_by_twins_goes_to_staff_with_both_candidates():
    john = listing("John Smith")
    james = listing("James Smith")
    summary = run("name,city,state,zip,level\nJ. Smith,Memphis,TN,38117,M1\n")
    assert summary.sent_to_review == 1
    assert not graston_records(john) and not graston_records(james)
    review = RosterReview.objects.get()
    assert {c["practitioner_id"] for c in review.candidates} == {john.pk, james.pk}
    assert all(c["evidence"] for c in review.candidates)

    decide_review(review=review, practitioner_id=james.pk)
    assert [r.verified_on for r in graston_records(james)] == [MAY]
    # The decision stands when the same file comes again.
    again = run("name,city,state,zip,level\nJ. Smith,Memphis,TN,38117,M1\n")
    assert again.matched_by_staff == 1 and again.sent_to_review == 0
    assert not graston_records(john)


def test_a_one_letter_typo_in_a_short_last_name_matches_when_place_and_phone_agree():
    # "Anber" / "Anbar": a ratio of 80, under the 88 that "nearly the same" needs.
    person = listing("Carla Anber", phone="901-555-0177")
    summary = run(HEADER + "Carla,Anbar,Memphis,TN,38117,901-555-0177,,DC,M1,\n")
    assert summary.matched_confidently == 1
    assert graston_records(person)
    (entry,) = RosterEntry.objects.all()
    assert entry.practitioner_id == person.pk


def test_a_one_letter_typo_with_only_the_state_in_common_goes_to_staff_not_to_the_listing():
    person = listing("Carla Anber", city="Nashville", postal_code="37203")
    summary = run(HEADER + "Carla,Anbar,Memphis,TN,38117,,,DC,M1,\n")
    assert summary.matched_confidently == 0
    assert not graston_records(person)


def test_a_practitioner_who_moved_clinics_in_the_same_metro_is_matched():
    # Listed in Memphis 38117; the roster has the new clinic in Germantown (38138, ~8 miles).
    person = listing("Dana Whitfield")
    summary = run(HEADER + "Dana,Whitfield,Germantown,TN,38138,,,DC,M1,\n")
    assert summary.matched_confidently == 1
    assert graston_records(person)


def test_a_namesake_across_the_state_is_not_taken_for_a_move():
    # Nashville is ~200 miles from Memphis: the same name there is for staff to judge.
    person = listing("Dana Whitfield", city="Nashville", postal_code="37203")
    summary = run(HEADER + "Dana,Whitfield,Memphis,TN,38117,,,DC,M1,\n")
    assert summary.matched_confidently == 0 and summary.sent_to_review == 1
    assert not graston_records(person)


def test_a_long_roster_is_matched_in_a_few_queries_not_a_few_per_row(
    django_assert_max_num_queries,
):
    from practitioners.ingest.roster import match_rows

    surnames = [
        "Adams",
        "Baker",
        "Clark",
        "Davis",
        "Evans",
        "Foster",
        "Garcia",
        "Hughes",
        "Irwin",
        "Jensen",
        "Kelly",
        "Lopez",
        "Morgan",
        "Nguyen",
        "Owens",
        "Patel",
        "Quinn",
        "Reyes",
        "Shah",
        "Turner",
        "Underwood",
        "Vance",
        "Walsh",
        "Xu",
        "Young",
        "Zimmer",
        "Bishop",
        "Chen",
        "Duarte",
        "Ellis",
    ]
    for surname in surnames:
        listing(f"Pat {surname}")
    rows = read_roster(
        io.StringIO(
            "first_name,last_name,state,zip,phone\n"
            + "".join(
                f"Pat,{surname},TN,38117,901-555-01{i:02d}\n" for i, surname in enumerate(surnames)
            )
        )
    )
    # NPIs, the state's clinics (one pass), phones (listings and clinics), the candidates'
    # listings and clinics: the same for 3 rows or 30.
    with django_assert_max_num_queries(7):
        outcomes = match_rows(rows)
    assert [o.how for o in outcomes] == ["confident"] * 30


@pytest.mark.parametrize(
    "name",
    [
        "Robert A. Smith",
        "Robert Smith",
        "Mary Ann Smith",
        "J. Smith",
        "Bob Smith-Jones",
        "Smith, John",
        "Dr. John Smith",
        "John Smith Jr",
        "Ludwig van Beethoven",
        "Maria de la Cruz",
        "Sean O'Neil",
        "A. B. Smith",
        "Wei Ma",
        "John Do",
        "John Smith DC",
    ],
)
def test_the_quick_name_split_reads_names_as_nameparser_does(name: str):
    from nameparser import HumanName

    from practitioners.ingest.roster import _split_name

    parsed = HumanName(name)
    assert _split_name(name) == (parsed.first, parsed.middle, parsed.last)


def test_each_listing_goes_to_at_most_one_row_and_each_row_to_one_listing():
    person = listing("Robert Smith")
    text = (
        HEADER + "Robert,Smith,Memphis,TN,38117,,,DC,M1,\nRobert,Smith,Memphis,TN,38117,,,DC,M2,\n"
    )
    summary = run(text)
    assert summary.matched_confidently == 0
    assert summary.sent_to_review + summary.unmatched == 2
    assert not graston_records(person)
    assert RosterEntry.objects.count() == 0


def test_the_best_pair_is_assigned_first():
    bob = listing("Robert Smith", postal_code="38117", phone="901-555-0111")
    rob = listing("Robert Smith", postal_code="38104", phone="901-555-0222")
    text = (
        HEADER
        + "Robert,Smith,Memphis,TN,38104,901-555-0222,,DC,M2,\n"
        + "Robert,Smith,Memphis,TN,38117,901-555-0111,,DC,M1,\n"
    )
    summary = run(text)
    assert summary.matched_confidently == 2
    assert [r.certification.slug for r in graston_records(rob)] == ["graston-m2"]
    assert [r.certification.slug for r in graston_records(bob)] == ["graston-m1"]


def test_a_newer_roster_reconfirms_those_on_it_and_flags_those_who_dropped_off():
    stays = listing("Robert Smith", npi="1234567893")
    leaves = listing("Mary Jones", npi="1245319599")
    may = HEADER + ",,,,,,,,M1,1234567893\n,,,,,,,,M1,1245319599\n"
    assert run(may).matched_by_npi == 2

    summary = run(HEADER + ",,,,,,,,M1,1234567893\n", as_of=NOVEMBER)
    assert summary.reconfirmed == 1 and summary.flagged == 1
    (kept,) = graston_records(stays)
    assert kept.verified_on == NOVEMBER
    (dropped,) = graston_records(leaves)  # never deleted
    assert dropped.verified_on is None
    assert dropped.verification_source.startswith(
        "Not on the Graston Technique, LLC roster, 2026-11-01"
    )
    flag = RosterReview.objects.get(kind=RosterReview.Kind.ABSENT)
    assert flag.practitioner == leaves


def test_running_the_same_file_again_changes_nothing():
    listing("Robert Smith", npi="1234567893")
    listing("John Smith")
    listing("James Smith")
    text = HEADER + ",,,,,,,,M1,1234567893\nJ.,Smith,Memphis,TN,38117,,,,M1,\n"
    first = run(text)
    assert first.certifications_added == 1 and first.sent_to_review == 1
    before = (
        list(PractitionerCertification.objects.values()),
        list(PractitionerCertification.history.values_list("history_id", flat=True)),
        list(RosterReview.objects.values("pk", "candidates")),
    )
    again = run(text)
    assert again.certifications_added == 0 and again.reconfirmed == 0 and again.unchanged == 1
    after = (
        list(PractitionerCertification.objects.values()),
        list(PractitionerCertification.history.values_list("history_id", flat=True)),
        list(RosterReview.objects.values("pk", "candidates")),
    )
    assert before == after
    assert RosterImport.objects.count() == 1


def test_a_dry_run_writes_nothing_but_reports_what_would_happen():
    person = listing("Robert Smith", npi="1234567893")
    summary = run(HEADER + ",,,,,,,,M1,1234567893\n", dry_run=True)
    assert summary.certifications_added == 1
    assert not graston_records(person)
    assert not RosterImport.objects.exists() and not RosterEntry.objects.exists()


def test_unmatched_rows_become_pending_listings_only_when_asked():
    assert run(HEADER + "Zed,Zebra,Memphis,TN,38117,,,,M1,\n").unmatched == 1
    assert not Practitioner.objects.filter(name="Zed Zebra").exists()
    summary = run(HEADER + "Zed,Zebra,Memphis,TN,38117,,,,M1,\n", create_unmatched=True)
    created = Practitioner.objects.get(name="Zed Zebra")
    assert summary.created == 1
    assert created.status == Practitioner.Status.PENDING
    assert [r.verified_on for r in graston_records(created)] == [MAY]


def test_bad_rows_are_refused_with_their_line_numbers():
    text = (
        HEADER
        + "Robert,Smith,Memphis,TN,38117,,,DC,M1,\n"
        + "Mary,Jones,Memphis,Tennessee,38117,,,DC,M1,\n"
        + "Ann,Lee,Memphis,TN,38117,,,DC,M1,12345\n"
    )
    with pytest.raises(RosterError) as error:
        run(text)
    assert error.value.messages[0].startswith("line 3: state 'Tennessee'")
    assert error.value.messages[1].startswith("line 4: NPI '12345'")
    assert not RosterImport.objects.exists()


def test_a_level_that_is_not_one_of_the_techniques_names_the_known_levels():
    with pytest.raises(RosterError) as error:
        run(HEADER + "Robert,Smith,Memphis,TN,38117,,,DC,M9,\n")
    assert error.value.messages == [
        "line 2: level 'M9' is not a level of Graston Technique (known: m1, m2, gts)"
    ]


def test_an_unknown_layout_names_the_columns_a_roster_needs():
    with pytest.raises(RosterError) as error:
        read_roster(io.StringIO("colour,shape\nred,round\n"))
    message = error.value.messages[0]
    assert "'colour', 'shape'" in message
    assert "first_name" in message and "zip" in message and "npi" in message


def test_headers_are_found_by_their_common_variants():
    (row,) = read_roster(
        io.StringIO(
            "First Name,LAST,ZIP Code,Phone Number,E-mail,Certified On\n"
            "Bob,Smith,38117-1234,901 555 0199,B@X.ORG,05/01/2025\n"
        )
    )
    assert (row.first, row.last, row.postal_code, row.email) == ("Bob", "Smith", "38117", "b@x.org")
    assert row.certified_on == dt.date(2025, 5, 1)


def test_the_command_prints_the_summary_and_refuses_a_bad_file(tmp_path: Path):
    listing("Robert Smith", npi="1234567893")
    good = tmp_path / "roster.csv"
    good.write_text(HEADER + ",,,,,,,,M2,1234567893\n")
    out = io.StringIO()
    call_command(
        "import_roster",
        str(good),
        "--technique=graston",
        "--as-of=2026-05-01",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "1 rows read: 1 matched by NPI" in out.getvalue()
    assert "1 certifications added" in out.getvalue()

    bad = tmp_path / "bad.csv"
    bad.write_text("colour\nred\n")
    with pytest.raises(CommandError, match="A roster needs"):
        call_command("import_roster", str(bad), technique="graston", stderr=io.StringIO())
    with pytest.raises(CommandError, match="No technique 'nope'"):
        call_command("import_roster", str(good), technique="nope", stderr=io.StringIO())


def test_staff_accept_one_candidate_from_the_review_queue_in_the_admin(client, django_user_model):
    from urllib.parse import urljoin

    from bs4 import BeautifulSoup

    staff = django_user_model.objects.create_superuser("curator", "c@example.com", "pw")
    client.force_login(staff)
    john = listing("John Smith")
    james = listing("James Smith")
    run("name,city,state,zip,level\nJ. Smith,Memphis,TN,38117,M1\n")
    changelist = "/admin/practitioners/rosterreview/"
    page = BeautifulSoup(client.get(changelist).content, "html.parser")
    link = page.select_one("#result_list tbody th a")
    assert link is not None and "J. Smith" in link.text
    url = urljoin(changelist, link["href"])
    change = client.get(url)
    html = change.content.decode()
    assert "John Smith" in html and "James Smith" in html and "first initial agrees" in html

    response = client.post(url, {"decision": str(james.pk)}, follow=True)
    assert response.status_code == 200
    assert [r.verified_on for r in graston_records(james)] == [MAY]
    assert not graston_records(john)
    review = RosterReview.objects.get()
    assert review.status == RosterReview.Status.ACCEPTED and review.decided_by == staff
