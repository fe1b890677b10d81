"""The admin's CSV import as a job: the upload is stored, the preview and the import run as tasks
(here on the database backend, run by db_worker's own code), the page shows the progress and
then one verdict, confirming imports from the stored file (all rows, or the good ones without
uploading again), unreadable files get a line-numbered message, and everything expires."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from practitioners import imports
from practitioners.ingest.csv import COLUMNS
from practitioners.models import ImportJob, Practitioner
from tests import browsing
from tests.queue import database_backend, queued, run_ready_tasks

pytestmark = pytest.mark.django_db

IMPORT_PAGE = "/admin/practitioners/practitioner/import-csv/"
HEADER = ",".join(COLUMNS)


def row(external_id: str, name: str, **values) -> str:
    fields = {
        "external_id": external_id,
        "name": name,
        "profession": "chiropractor",
        "certifications": "art",
        "address_line1": "10 Main St",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38103",
        "latitude": "35.14",
        "longitude": "-90.05",
        "status": "published",
        **values,
    }
    return ",".join(fields.get(column, "") for column in COLUMNS)


def csv_bytes(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("curator", "c@example.com", "pw")
    client.force_login(user)
    return client


def upload(client, content: bytes, name: str = "listings.csv"):
    file = SimpleUploadedFile(name, content, content_type="text/csv")
    return client.post(IMPORT_PAGE, {"file": file})


def buttons(response) -> dict[str, str]:
    return dict(
        re.findall(
            r'<button type="submit" class="default" name="mode" value="(\w+)">([^<]+)<',
            response.content.decode(),
        )
    )


def text_of(response, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split()) if match else ""


# --- the job, step by step, with a worker -----------------------------------------------------


def test_the_upload_answers_at_once_and_the_page_follows_the_preview_then_the_import(
    staff_client,
):
    with database_backend():
        response = upload(staff_client, csv_bytes(row("a1", "First"), row("a2", "Second")))
        assert response.status_code == 302
        job = ImportJob.objects.get()
        assert response["Location"] == f"{IMPORT_PAGE}{job.pk}/"
        assert imports.upload_path(job).read_bytes().startswith(HEADER.encode())
        (task,) = queued()
        assert task.task_path.endswith("preview_import")

        # While the task waits or runs: the progress, and the page reloads itself.
        page = staff_client.get(response["Location"])
        assert "Checking the file (nothing is written)" in page.content.decode()
        assert text_of(page, "import-progress").startswith("0 of 2 rows read, 0 bad so far.")
        assert '<meta http-equiv="refresh" content="2">' in page.content.decode()

        assert run_ready_tasks() == 1  # the worker previews
        page = staff_client.get(response["Location"])
        html = page.content.decode()
        assert "Preview (nothing written yet)" in html and "http-equiv" not in html
        assert text_of(page, "import-verdict").startswith(
            "All 2 rows are good. Importing will write: 2 practitioner(s) created"
        )
        assert buttons(page) == {"all": "Import all 2 rows"}
        assert not Practitioner.objects.exists()

        # Confirm: the page answers at once; the import is a task too.
        confirmed = browsing.submit(
            staff_client, browsing.form(page, "#import-confirm"), button="Import all 2 rows"
        )
        assert confirmed.status_code == 302
        assert ImportJob.objects.get().state == "importing"
        assert not Practitioner.objects.exists()
        importing = staff_client.get(confirmed["Location"])
        assert "Importing" in importing.content.decode()

        assert run_ready_tasks() == 1
        done = staff_client.get(confirmed["Location"])
        assert "Imported" in done.content.decode()
        assert "Changes were written" in text_of(done, "import-summary")
        assert sorted(Practitioner.objects.values_list("name", flat=True)) == ["First", "Second"]
        assert not imports.upload_path(ImportJob.objects.get()).exists()  # served its purpose
        # Each listing's history names the file it came from.
        created = Practitioner.objects.get(name="First").history.get()
        assert created.history_change_reason == "CSV import listings.csv"


def test_the_job_page_shows_how_far_the_worker_has_got_while_it_runs(staff_client, monkeypatch):
    # The import runs in one transaction: the figures must reach the page some other way.
    monkeypatch.setattr(imports, "PROGRESS_INTERVAL_SECONDS", 0)
    seen: list[str] = []
    rows_in_row: list[int] = []
    write_progress = imports._progress_writer

    def progress_then_look(job):
        write = write_progress(job)

        def progress(done):
            write(done)
            seen.append(text_of(staff_client.get(f"{IMPORT_PAGE}{job.pk}/"), "import-progress"))
            # What another connection would read of the job's row meanwhile: nothing new.
            rows_in_row.append(ImportJob.objects.values_list("rows_read", flat=True).get())

        return progress

    monkeypatch.setattr(imports, "_progress_writer", progress_then_look)
    with database_backend():
        upload(staff_client, csv_bytes(row("a1", "First"), row("a2", "Second"), row("a3", "")))
        assert run_ready_tasks() == 1
        job = ImportJob.objects.get()

    assert seen and seen[-1].startswith("3 of 3 rows read, 1 bad so far.")
    assert set(rows_in_row) == {0}
    assert job.state == ImportJob.State.PREVIEWED
    assert not imports.progress_path(job).exists()  # the job's row has the final figures


def test_staff_can_leave_and_find_their_import_again(staff_client):
    with database_backend():
        upload(staff_client, csv_bytes(row("a1", "First")), name="march.csv")
        listing = staff_client.get(IMPORT_PAGE)
        assert browsing.text_of(listing, "#import-jobs tbody td") == "march.csv"
        again = browsing.follow(staff_client, listing, text="march.csv")
        assert again.status_code == 200 and "Checking the file" in again.content.decode()


def test_one_clear_verdict_and_skipping_bad_rows_without_uploading_again(staff_client):
    """Issue 13.12: the preview said "1 bad rows. Changes would be written." next to "Nothing
    will be written while any row is bad", and skipping needed the file picked again."""
    content = csv_bytes(row("a1", "Good Row"), row("a2", "Bad Row", profession="wizard"))
    page = staff_client.get(upload(staff_client, content)["Location"])
    html = page.content.decode()
    verdict = text_of(page, "import-verdict")
    assert verdict.startswith(
        "1 of 2 rows is bad (listed below), so importing the file as it is would write nothing."
    )
    assert "or import the 1 good row now and skip the bad: 1 practitioner(s) created" in verdict
    assert "Changes would be written" not in html and "Nothing will be written while" not in html
    assert re.search(r"<td>3</td><td>unknown profession &#x27;wizard&#x27;</td>", html)
    assert buttons(page) == {"skip": "Import the 1 good row and skip the 1 bad"}

    # The all-or-nothing import is not on offer, and asking for it anyway writes nothing.
    refused = staff_client.post(page.wsgi_request.path, {"mode": "all"}, follow=True)
    assert "does not allow that import" in " ".join(map(str, refused.context["messages"]))
    assert not Practitioner.objects.exists()

    done = browsing.submit(
        staff_client,
        browsing.form(page, "#import-confirm"),
        button="Import the 1 good row and skip the 1 bad",
        follow=True,
    )
    assert list(Practitioner.objects.values_list("name", flat=True)) == ["Good Row"]
    assert "1 bad row skipped" in done.content.decode()


def test_confirming_twice_imports_once(staff_client):
    with database_backend():
        job_url = upload(staff_client, csv_bytes(row("a1", "First")))["Location"]
        run_ready_tasks()
        staff_client.post(job_url, {"mode": "all"})
        second = staff_client.post(job_url, {"mode": "all"}, follow=True)
        assert "already been started" in " ".join(map(str, second.context["messages"]))
        assert queued().count() == 1
        run_ready_tasks()
    assert Practitioner.objects.count() == 1


# --- files that cannot be imported ---------------------------------------------------------------


UNREADABLE = {
    "nul-byte": (
        csv_bytes(row("a1", "First"), row("a2", "Sec\x00ond")),
        "line 3: the file contains a NUL byte",
    ),
    "oversized-field": (
        csv_bytes(row("a1", "First"), row("a2", "Second", bio="x" * 200_000)),
        "line 3: a field is longer than 131,072 characters",
    ),
    "latin-1": (
        csv_bytes(row("a1", "First")) + row("a2", "José").encode("latin-1") + b"\n",
        "the file is not UTF-8 text",
    ),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "line 1:"),
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_an_unreadable_file_gets_a_line_numbered_message_and_writes_nothing(staff_client, kind):
    content, message = UNREADABLE[kind]
    page = staff_client.get(upload(staff_client, content)["Location"])
    verdict = text_of(page, "import-verdict")
    assert verdict.startswith("This file cannot be imported: line "), verdict
    assert message in verdict and "nothing was written" in verdict
    assert buttons(page) == {}
    assert not Practitioner.objects.exists()


def test_a_header_only_file_is_nothing_to_import(staff_client):
    page = staff_client.get(upload(staff_client, csv_bytes())["Location"])
    assert text_of(page, "import-verdict") == (
        "Line 1: the file has a header row but no data rows; there is nothing to import."
    )
    assert buttons(page) == {}


@pytest.mark.parametrize("kind", [*UNREADABLE, "header-only"])
def test_the_command_line_gives_the_same_plain_message_without_a_traceback(tmp_path, kind):
    """A CommandError is what Django prints as one plain line ("CommandError: ...") and exit
    status 1; anything else would be a traceback."""
    content, message = UNREADABLE.get(kind, (csv_bytes(), "line 1: the file has a header row"))
    path = tmp_path / "listings.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError) as raised:
        call_command("import_practitioners", str(path), verbosity=0)
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"{path}: line ")
    assert not Practitioner.objects.exists()


def test_an_upload_over_the_size_limit_is_refused_with_a_clear_message(staff_client, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    content = csv_bytes(*[row(f"a{n}", "Someone Long-Named", bio="b" * 500) for n in range(2400)])
    assert len(content) > 1024 * 1024
    response = upload(staff_client, content)
    assert response.status_code == 400
    html = response.content.decode()
    assert "the largest import is 1 MB (IMPORT_MAX_UPLOAD_MB)" in html
    assert "Split it into smaller files" in html
    assert not ImportJob.objects.exists()
    assert list(settings.IMPORT_UPLOAD_DIR.iterdir()) == []


# --- expiry --------------------------------------------------------------------------------------


def test_an_expired_preview_cannot_be_confirmed_and_the_clean_up_removes_it(staff_client, settings):
    job_url = upload(staff_client, csv_bytes(row("a1", "First")))["Location"]
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - dt.timedelta(hours=1))

    page = staff_client.get(job_url)
    assert "This upload has expired" in page.content.decode() and buttons(page) == {}
    refused = staff_client.post(job_url, {"mode": "all"}, follow=True)
    assert "expired" in " ".join(map(str, refused.context["messages"]))
    assert not Practitioner.objects.exists()

    call_command("clean_imports", verbosity=0)
    assert not ImportJob.objects.exists()
    assert not imports.upload_path(job).exists()
    assert staff_client.get(job_url).status_code == 404


def test_the_clean_up_keeps_an_import_a_worker_is_still_on(staff_client):
    with database_backend():
        upload(staff_client, csv_bytes(row("a1", "First")))
    job = ImportJob.objects.get()  # previewing, its task queued
    ImportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    call_command("clean_imports", verbosity=0)
    assert ImportJob.objects.filter(pk=job.pk).exists()
    assert imports.upload_path(job).exists()


def test_a_task_that_crashes_stops_the_job_with_a_message(staff_client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(imports, "import_practitioners", broken)
    with database_backend():
        job_url = upload(staff_client, csv_bytes(row("a1", "First")))["Location"]
        run_ready_tasks()
    page = staff_client.get(job_url)
    assert "Stopped" in page.content.decode()
    assert "stopped on an unexpected error (RuntimeError); nothing was written" in text_of(
        page, "import-verdict"
    )
    assert "disk on fire" not in page.content.decode()


def test_the_import_pages_run_a_fixed_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    bad = [row(f"b{n}", "Bad", profession="wizard") for n in range(30)]
    for _ in range(3):
        upload(staff_client, csv_bytes(row("a1", "First"), *bad))
    job = ImportJob.objects.first()
    with django_assert_max_num_queries(8):
        assert staff_client.get(f"{IMPORT_PAGE}{job.pk}/").status_code == 200
    with django_assert_max_num_queries(8):
        assert staff_client.get(IMPORT_PAGE).status_code == 200
