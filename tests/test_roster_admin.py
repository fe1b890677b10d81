"""A roster uploaded in the admin, as a job of the CSV import's machinery (issue 20): the upload
answers at once, a worker previews (how many would match by NPI, by name and place, need review,
stay unmatched), staff confirm, a worker imports, and the page shows the summary with the review
queue; a file that is not a roster is refused at once with a clear message and nothing stored,
and a roster with bad rows is previewed as refused, with its line numbers, and cannot be
imported."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from practitioners import imports
from practitioners.models import (
    ImportJob,
    Practitioner,
    PractitionerCertification,
    RosterImport,
    RosterReview,
)
from tests import browsing
from tests.queue import database_backend, queued, run_ready_tasks

from .factories import LocationFactory, PractitionerFactory, certification

pytestmark = pytest.mark.django_db

UPLOAD_PAGE = "/admin/practitioners/rosterimport/upload/"
MAY = dt.date(2026, 5, 1)
HEADER = "first_name,last_name,city,state,zip,phone,level,npi\n"
ROSTER = HEADER + (
    "Bob,Jones,Nashville,TN,37203,,M2,1234567893\n"  # the NPI settles it
    "Jane,Doe,Memphis,TN,38117,(901) 555-0142,M1,\n"  # name and place
    "J.,Smith,Memphis,TN,38117,,M1,\n"  # John or James Smith: staff decide
    "Nobody,Unlisted,Memphis,TN,38117,,M1,\n"  # no listing
)


def listing(name: str, *, npi: str = "", phone: str = "", postal_code: str = "38117"):
    practitioner = PractitionerFactory(name=name, npi=npi, phone=phone)
    LocationFactory(practitioner=practitioner, city="Memphis", state="TN", postal_code=postal_code)
    return practitioner


@pytest.fixture
def directory():
    return {
        "robert": listing("Robert Jones", npi="1234567893", postal_code="37203"),
        "jane": listing("Jane Doe", phone="(901) 555-0142"),
        "john": listing("John Smith"),
        "james": listing("James Smith"),
    }


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("curator", "c@example.com", "pw")
    client.force_login(user)
    return client


def upload(client, content: bytes, *, name: str = "graston-may.csv", technique: str = "graston"):
    return client.post(
        UPLOAD_PAGE,
        {
            "file": SimpleUploadedFile(name, content, content_type="text/csv"),
            "technique": technique,
            "as_of": MAY.isoformat(),
        },
    )


def graston(practitioner: Practitioner) -> list[tuple[str, dt.date | None, str]]:
    return [
        (r.certification.slug, r.verified_on, r.verification_source)
        for r in PractitionerCertification.objects.filter(
            practitioner=practitioner, certification__slug__startswith="graston"
        ).select_related("certification")
    ]


def texts_of(response, selector: str) -> list[str]:
    return [" ".join(e.get_text(" ").split()) for e in browsing.soup(response).select(selector)]


def stored_uploads() -> list[str]:
    from django.conf import settings

    folder = settings.IMPORT_UPLOAD_DIR
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


# --- upload -> preview -> confirm -> import, with a worker ----------------------------------------


def test_a_roster_upload_is_previewed_by_a_worker_then_imported_on_confirmation(
    staff_client, directory, django_assert_max_num_queries
):
    with database_backend():
        response = upload(staff_client, ROSTER.encode())
        assert response.status_code == 302
        job = ImportJob.objects.get()
        assert (job.kind, job.options["technique"], job.options["as_of"]) == (
            "roster",
            "graston",
            "2026-05-01",
        )
        assert response["Location"] == f"{UPLOAD_PAGE}{job.pk}/"
        (task,) = queued()
        assert task.task_path.endswith("preview_import")  # the CSV import's own task

        # Until a worker takes it: the page says what is happening and reloads itself.
        with django_assert_max_num_queries(8):
            waiting = staff_client.get(response["Location"])
        assert (
            "Matching the roster to the listings (nothing is written)" in waiting.content.decode()
        )
        assert browsing.text_of(waiting, "#roster-progress").startswith(
            "Reading and matching 4 rows."
        )
        assert '<meta http-equiv="refresh" content="2">' in waiting.content.decode()

        assert run_ready_tasks() == 1  # the worker previews: a dry run, rolled back
        assert not PractitionerCertification.objects.exists()
        assert not RosterImport.objects.exists() and not RosterReview.objects.exists()
        preview = staff_client.get(response["Location"])
        html = preview.content.decode()
        assert "Preview (nothing written yet)" in html and "http-equiv" not in html
        assert browsing.text_of(preview, "#roster-verdict") == (
            "4 rows read: 1 would match by NPI, 1 by name and place, 1 need staff review, "
            "1 unmatched. Importing will write: 2 certification(s) added, 0 re-confirmed, "
            "0 already up to date, 0 flagged as not on this roster."
        )
        counts = dict(
            zip(
                texts_of(preview, "#roster-counts th"),
                texts_of(preview, "#roster-counts td"),
                strict=True,
            )
        )
        assert counts == {
            "Matched by NPI": "1",
            "Matched by name and place": "1",
            "Need staff review": "1",
            "Unmatched": "1",
        }
        assert texts_of(preview, "#roster-unmatched tbody td") == [
            "5",
            "Nobody Unlisted",
            "Memphis, TN, 38117",
        ]

        # Confirm: the request only queues the import.
        confirmed = browsing.submit(
            staff_client, browsing.form(preview, "#roster-confirm"), button="Import the roster"
        )
        assert confirmed.status_code == 302
        assert ImportJob.objects.get().state == "importing"
        assert not PractitionerCertification.objects.exists()
        assert "Importing the roster" in staff_client.get(confirmed["Location"]).content.decode()

        assert run_ready_tasks() == 1
    done = staff_client.get(confirmed["Location"])
    assert browsing.text_of(done, "#roster-summary") == (
        "4 rows read: 1 matched by NPI, 1 matched confidently, 1 sent to review, 1 unmatched; "
        "2 certifications added, 0 re-confirmed, 0 already up to date, 0 flagged as not on this "
        "roster."
    )
    source = "Graston Technique, LLC roster, 2026-05-01"
    assert graston(directory["robert"]) == [("graston-m2", MAY, source)]
    assert graston(directory["jane"]) == [("graston-m1", MAY, source)]
    assert not graston(directory["john"]) and not graston(directory["james"])
    assert not imports.upload_path(ImportJob.objects.get()).exists()  # served its purpose

    # The doubtful row waits in the review queue, one click away, with both candidates.
    queue = browsing.follow(staff_client, done, text="1 row waiting for staff review")
    assert queue.status_code == 200
    review = RosterReview.objects.get()
    assert {c["name"] for c in review.candidates} == {"John Smith", "James Smith"}
    assert "J. Smith" in queue.content.decode()
    # And the roster is listed with its summary.
    rosters = staff_client.get("/admin/practitioners/rosterimport/")
    assert "Graston Technique, LLC roster, 2026-05-01" in rosters.content.decode()
    assert "4 rows: 1 by NPI, 1 confident, 1 review, 1 unmatched" in rosters.content.decode()


def test_the_roster_page_shows_how_far_the_worker_has_got_while_it_runs(
    staff_client, directory, monkeypatch
):
    # The roster is matched and recorded in one transaction: the figures must reach the page
    # some other way than the job's row (as for a CSV import).
    from practitioners import roster_jobs

    monkeypatch.setattr(imports, "PROGRESS_INTERVAL_SECONDS", 0)
    seen: list[str] = []
    rows_in_row: list[int] = []
    write_progress = roster_jobs._progress_writer

    def progress_then_look(job):
        write = write_progress(job)

        def progress(done: int, total: int) -> None:
            write(done, total)
            page = staff_client.get(f"{UPLOAD_PAGE}{job.pk}/")
            seen.append(browsing.text_of(page, "#roster-progress"))
            # What another connection would read of the job's row meanwhile: nothing new.
            rows_in_row.append(ImportJob.objects.values_list("rows_read", flat=True).get())

        return progress

    monkeypatch.setattr(roster_jobs, "_progress_writer", progress_then_look)
    with database_backend():
        upload(staff_client, ROSTER.encode())
        assert run_ready_tasks() == 1
        job = ImportJob.objects.get()

    assert [text.split(" rows recorded.")[0] for text in seen] == [
        "1 of 4",
        "2 of 4",
        "3 of 4",
        "4 of 4",
    ]
    assert set(rows_in_row) == {0}
    assert job.state == ImportJob.State.PREVIEWED and job.rows_read == 4
    assert not imports.progress_path(job).exists()  # the job's row has the final figures


def test_staff_find_their_roster_upload_again_and_a_second_confirmation_imports_once(
    staff_client, directory
):
    with database_backend():
        job_url = upload(staff_client, ROSTER.encode(), name="may.csv")["Location"]
        page = staff_client.get(UPLOAD_PAGE)
        assert texts_of(page, "#roster-jobs tbody td")[:3] == [
            "may.csv",
            "Graston Technique",
            "2026-05-01",
        ]
        run_ready_tasks()
        staff_client.post(job_url, {"mode": "all"})
        again = staff_client.post(job_url, {"mode": "all"}, follow=True)
        assert "already been started" in " ".join(map(str, again.context["messages"]))
        assert queued().count() == 1
        run_ready_tasks()
    assert PractitionerCertification.objects.count() == 2


def test_the_csv_import_page_lists_only_listing_imports(staff_client, directory):
    upload(staff_client, ROSTER.encode(), name="may.csv")
    page = staff_client.get("/admin/practitioners/practitioner/import-csv/")
    assert "may.csv" not in page.content.decode()
    job = ImportJob.objects.get()
    assert (
        staff_client.get(f"/admin/practitioners/practitioner/import-csv/{job.pk}/").status_code
        == 404
    )


# --- files that are not rosters, and rosters with bad rows ---------------------------------------


NOT_A_ROSTER = {
    "unknown columns": (
        b"who,where\nBob Jones,Memphis\n",
        "Line 1: This file's columns are not a roster we can read (found: 'who', 'where'). A "
        "roster needs a name (either a `name` column, or `first_name` and `last_name`)",
    ),
    "empty": (b"", "The submitted file is empty."),
    "not UTF-8": (
        "name,state\nJosé Núñez,TN\n".encode("utf-16"),
        "The file is not UTF-8 text (save the spreadsheet as CSV UTF-8).",
    ),
    "binary": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "The file is not"),
}


@pytest.mark.parametrize("kind", list(NOT_A_ROSTER))
def test_a_file_that_is_not_a_roster_is_refused_at_once_and_nothing_is_lost(
    staff_client, directory, kind
):
    earlier = PractitionerCertification.objects.create(
        practitioner=directory["jane"],
        certification=certification("graston-m1"),
        verified_on=dt.date(2026, 1, 1),
        verification_source="Graston Technique roster, 2026-01-01",
    )
    content, message = NOT_A_ROSTER[kind]
    with database_backend():
        response = upload(staff_client, content)
        assert response.status_code == 400
        assert message in browsing.text_of(response, ".errorlist")
        assert not queued().exists()
    assert not ImportJob.objects.exists() and stored_uploads() == []
    # What staff chose stays chosen, so only the file needs picking again.
    form = browsing.form(response, "#roster-upload")
    assert form.value("technique") == "graston" and form.value("as_of") == "2026-05-01"
    earlier.refresh_from_db()
    assert earlier.verified_on == dt.date(2026, 1, 1)


def test_a_roster_with_bad_rows_is_previewed_as_refused_with_line_numbers_and_cannot_be_imported(
    staff_client, directory
):
    content = (
        HEADER
        + "Jane,Doe,Memphis,TN,38117,,M1,\n"
        + "Bob,Jones,Nashville,Tennessee,37203,,M2,\n"
        + "Ann,Lee,Memphis,TN,38117,,M1,12345\n"
    ).encode()
    with database_backend():
        job_url = upload(staff_client, content)["Location"]
        run_ready_tasks()
        page = staff_client.get(job_url)
        assert browsing.text_of(page, "#roster-verdict").startswith(
            "This roster cannot be imported: 2 problems (listed below)"
        )
        assert texts_of(page, "#roster-errors tbody td") == [
            "3",
            "state 'Tennessee' is not a two-letter code",
            "4",
            "NPI '12345' is not 10 digits",
        ]
        assert "roster-confirm" not in page.content.decode()

        # Confirming anyway is refused, and nothing is queued or written.
        refused = staff_client.post(job_url, {"mode": "all"})
        assert refused.status_code == 400
        assert "cannot be imported" in " ".join(map(str, refused.context["messages"]))
        assert not queued().exists()
    assert ImportJob.objects.get().state == "previewed"
    assert not PractitionerCertification.objects.exists() and not RosterImport.objects.exists()


def test_a_roster_unreadable_past_the_part_checked_at_upload_is_refused_with_its_line(
    staff_client, directory
):
    # The request checks only the start of the file; a bad byte further down is the preview's.
    good = "".join(f"Person,Unlisted{i:05d},Memphis,TN,38117,,M1,\n" for i in range(2000))
    assert len(good) > 64 * 1024
    content = (HEADER + good).encode() + "José,Núñez,Memphis,TN,38117,,M1,\n".encode("latin-1")
    page = staff_client.get(upload(staff_client, content)["Location"])
    assert texts_of(page, "#roster-errors tbody td") == [
        "2002",
        "the file is not UTF-8 text (save the spreadsheet as CSV UTF-8)",
    ]
    assert "roster-confirm" not in page.content.decode()
    assert not PractitionerCertification.objects.exists()


def test_an_expired_roster_preview_cannot_be_imported(staff_client, directory):
    job_url = upload(staff_client, ROSTER.encode())["Location"]
    ImportJob.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    refused = staff_client.post(job_url, {"mode": "all"})
    assert refused.status_code == 400
    assert "expired" in refused.content.decode()
    assert not PractitionerCertification.objects.exists()


def test_only_staff_allowed_to_verify_certificates_may_upload_a_roster(client, directory):
    clerk = get_user_model().objects.create_user("clerk", "k@example.com", "pw", is_staff=True)
    client.force_login(clerk)
    assert client.get(UPLOAD_PAGE).status_code == 403
    assert upload(client, ROSTER.encode()).status_code == 403
    assert not ImportJob.objects.exists()
