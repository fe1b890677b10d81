"""Slow work off the request: background tasks (django-tasks, django-tasks-db in production) for
geocoding and staff mail, their retries, the real worker process, and the scheduled jobs
(retry_geocodes, clean_imports) that are safe to run twice at once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from practitioners import geocoding, health, locks, tasks
from practitioners.models import ListingReport, Location, Practitioner
from tests.factories import LocationFactory, practitioner_near_zip
from tests.geocoder_server import GeocoderServer, Reply
from tests.queue import database_backend, queued, run_ready_tasks, time_passes
from tests.servers import ROOT, production_env
from tests.test_public_forms import submission_data

pytestmark = pytest.mark.django_db

ZIP_38117 = (35.1124, -89.9034)
NEAR_38117 = (35.1061, -89.8870)


@pytest.fixture(autouse=True)
def _fresh_throttle(monkeypatch):
    monkeypatch.setattr(geocoding, "_throttle", geocoding._Throttle())


@pytest.fixture
def online(settings):
    """Nominatim's real client (geopy) pointed at the loopback stand-in."""
    with GeocoderServer() as server:
        settings.GEOCODER = "nominatim"
        settings.GEOCODER_DOMAIN = server.domain
        settings.GEOCODER_SCHEME = "http"
        settings.GEOCODER_TIMEOUT = 1.0
        settings.GEOCODER_MIN_DELAY_SECONDS = 0
        yield server


def pending_location(**fields) -> Location:
    values = {
        "address_line1": "5100 Poplar Ave",
        "city": "Memphis",
        "state": "TN",
        "postal_code": "38117",
        "latitude": None,
        "longitude": None,
        "precision": Location.Precision.ZIP,
        "geocode_status": Location.GeocodeStatus.PENDING,
        **fields,
    }
    return LocationFactory(**values)


# --- settings ----------------------------------------------------------------------------------


def test_tests_and_development_run_tasks_at_once_and_production_queues_them_in_the_database():
    from django.conf import settings

    assert settings.TASKS["default"]["BACKEND"].endswith("ImmediateBackend")
    code = "import django; django.setup(); from django.conf import settings; print(settings.TASKS)"
    for env, expected in (
        ({}, "django_tasks_db.DatabaseBackend"),
        ({"DEBUG": "true"}, "django_tasks.backends.immediate.ImmediateBackend"),
        ({"TASKS_BACKEND": "immediate"}, "django_tasks.backends.immediate.ImmediateBackend"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=production_env(SECRET_KEY="k" * 60, **env),
            capture_output=True,
            text=True,
        )
        assert expected in result.stdout, (env, result.stdout, result.stderr)
    bad = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(SECRET_KEY="k" * 60, TASKS_BACKEND="celery"),
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "TASKS_BACKEND must be immediate or database" in bad.stderr


# --- a real worker process -----------------------------------------------------------------


def _database_url(tmp_path: Path) -> str:
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{tmp_path / 'queue.sqlite3'}"


@pytest.mark.django_db(transaction=True)
def test_a_real_db_worker_process_runs_a_queued_task_and_stops_cleanly(tmp_path):
    """The production path end to end: a task queued in the database (SQLite or PostgreSQL,
    whichever the suite runs on) waits there with no worker running, a `manage.py db_worker`
    process started afterwards runs it, and SIGTERM stops the worker without an error."""
    env = production_env(
        SECRET_KEY="k" * 60,
        DATABASE_URL=_database_url(tmp_path),
        TASKS_BACKEND="database",
        STAFF_NOTIFY_EMAIL="curation@example.org",
        # The worker prints the mail it sends on its standard output.
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        GEOCODER="zip",
    )

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    if connection.vendor == "sqlite":
        migrated = manage("migrate", "django_tasks_database", "-v0")
        assert migrated.returncode == 0, migrated.stderr
    enqueue = manage(
        "shell",
        "-c",
        "from practitioners import tasks; "
        "print(tasks.send_staff_email.enqueue('From the queue', 'Body').id)",
    )
    assert enqueue.returncode == 0, enqueue.stderr
    task_id = enqueue.stdout.strip().splitlines()[-1]
    assert "Subject:" not in enqueue.stdout  # queued, not sent: no worker yet

    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            "default",
            "--interval",
            "0.2",
            "--no-startup-delay",
            "--no-reload",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            check = manage(
                "shell",
                "-c",
                "from django_tasks_db.models import DBTaskResult; "
                f"print(DBTaskResult.objects.get(id='{task_id}').status)",
            )
            status = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else ""
            if status in ("SUCCESSFUL", "FAILED"):
                break
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert status == "SUCCESSFUL", output
    assert "Subject: [Practitioner Locator] From the queue" in output
    assert "To: curation@example.org" in output
    assert worker.returncode == 0, output


# --- geocoding as a task ----------------------------------------------------------------------


def test_a_submission_answers_at_once_with_an_unresponsive_geocoder_and_the_task_retries_later(
    client, online, settings, django_capture_on_commit_callbacks
):
    settings.GEOCODER_TIMEOUT = 2.5
    online.default = Reply.slow(3.0)  # answers after the client has given up
    health.warm_up()  # what gunicorn does before a worker's first request
    assert client.get("/submit/").status_code == 200

    with database_backend():
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/submit/", submission_data())
        elapsed = time.monotonic() - started

        assert response.status_code == 302 and response["Location"] == "/submit/thanks/"
        # Waiting for the geocoder would take its 2.5 s timeout at least.
        assert elapsed < 2.0, f"the POST waited {elapsed:.2f} s"
        assert online.request_count == 0  # nothing was asked during the request
        listing = Practitioner.objects.get()  # exactly one listing
        location = listing.locations.get()
        # Searchable at once, at its ZIP centroid, marked approximate until the task places it.
        assert location.precision == Location.Precision.ZIP
        assert location.geocode_status == Location.GeocodeStatus.PENDING
        assert location.latitude is not None
        assert listing.get_absolute_url()  # (the profile says "approximate location")
        (task,) = queued()
        assert task.queue_name == "geocoding" and task.args_kwargs["args"][0] == [location.pk]

        assert run_ready_tasks() == 1  # the worker: the provider times out
        location.refresh_from_db()
        assert location.geocode_status == Location.GeocodeStatus.FAILED
        assert "timed out" in location.geocode_error
        (retry,) = queued()
        assert retry.args_kwargs["kwargs"] == {"attempt": 2}
        wait = (retry.run_after - timezone.now()).total_seconds()
        assert 50 < wait <= 60  # backoff: a minute before the second attempt
        assert run_ready_tasks() == 0  # not before its time

        online.default = Reply.found(*NEAR_38117)  # the provider is back
        time_passes(60)
        assert run_ready_tasks() == 1
        location.refresh_from_db()
        assert (location.latitude, location.longitude) == NEAR_38117
        assert location.precision == Location.Precision.ADDRESS
        assert location.geocode_status == Location.GeocodeStatus.OK
        assert not queued().exists()
    assert Practitioner.objects.count() == 1


def test_geocoding_retries_back_off_then_leave_it_to_the_scheduled_job(online):
    online.default = Reply.error(503)
    location = pending_location()
    with database_backend():
        tasks.geocode_in_background(location_ids=[location.pk])
        waits = []
        for _ in range(len(tasks.RETRY_DELAYS_SECONDS) + 1):
            assert run_ready_tasks() == 1
            for retry in queued():
                waits.append(round((retry.run_after - timezone.now()).total_seconds() / 60))
                time_passes((retry.run_after - timezone.now()).total_seconds() + 1)
        assert waits == [1, 5, 30, 120]  # minutes
        assert not queued().exists()  # no fifth retry: the hourly retry_geocodes takes over
    location.refresh_from_db()
    assert location.geocode_status == Location.GeocodeStatus.FAILED
    assert online.request_count == 5

    online.default = Reply.found(*NEAR_38117)
    call_command("retry_geocodes", verbosity=0)
    location.refresh_from_db()
    assert location.geocode_status == Location.GeocodeStatus.OK
    assert (location.latitude, location.longitude) == NEAR_38117


def test_the_immediate_backend_geocodes_after_the_commit_in_the_same_process(
    online, django_capture_on_commit_callbacks
):
    online.default = Reply.found(*NEAR_38117)
    location = pending_location()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tasks.geocode_after_commit(location_ids=[location.pk])
    assert online.request_count == 0  # nothing before the commit
    for callback in callbacks:
        callback()
    location.refresh_from_db()
    assert location.precision == Location.Precision.ADDRESS
    assert online.request_count == 1


def test_a_big_batch_of_clinics_becomes_several_small_geocoding_tasks(monkeypatch):
    monkeypatch.setattr(tasks, "GEOCODE_TASK_SIZE", 2)
    ids = [pending_location(address_line1=f"{n} Poplar Ave").pk for n in range(5)]
    with database_backend():
        tasks.geocode_in_background(location_ids=ids)
        assert sorted(len(t.args_kwargs["args"][0]) for t in queued()) == [1, 2, 2]
        assert run_ready_tasks() == 3
    assert not Location.objects.filter(geocode_status=Location.GeocodeStatus.PENDING).exists()


def test_a_geocoding_task_that_finds_the_provider_busy_comes_back_without_asking(online):
    online.default = Reply.found(*NEAR_38117)
    location = pending_location()
    holder = _LockHolder(tasks.GEOCODING_LOCK)
    try:
        with database_backend():
            tasks.geocode_in_background(location_ids=[location.pk])
            assert run_ready_tasks() == 1
            (retry,) = queued()
            assert retry.args_kwargs["kwargs"] == {"attempt": 1}  # not counted as a failure
        assert online.request_count == 0
    finally:
        holder.release()


# --- staff mail ---------------------------------------------------------------------------------


def test_staff_are_mailed_when_a_listing_is_submitted(
    client, settings, django_capture_on_commit_callbacks
):
    settings.STAFF_NOTIFY_EMAIL = ["curation@example.org", "lead@example.org"]
    settings.SITE_URL = "https://directory.example.org"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/submit/", submission_data())
    assert response.status_code == 302

    (message,) = mail.outbox
    listing = Practitioner.objects.get()
    assert message.subject == "[Practitioner Locator] New listing to review: Jane Roe"
    assert message.to == ["curation@example.org", "lead@example.org"]
    assert (
        f"https://directory.example.org/admin/practitioners/practitioner/{listing.pk}/change/"
        in message.body
    )
    assert "jane@example.com" not in message.body  # personal details stay in the admin


def test_staff_are_mailed_when_a_problem_is_reported(
    client, settings, django_capture_on_commit_callbacks
):
    settings.STAFF_NOTIFY_EMAIL = ["curation@example.org"]
    listing = practitioner_near_zip("38117", name="Avery Chen", status="published")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/practitioners/{listing.slug}/report/",
            {"kind": "closed", "details": "Shut in May.", "contact_email": "me@example.com"},
        )
    assert response.status_code == 302 and ListingReport.objects.count() == 1

    (message,) = mail.outbox
    assert message.subject == "[Practitioner Locator] Problem reported: Avery Chen"
    assert "Problem: Practice closed" in message.body
    assert "me@example.com" not in message.body


def test_no_mail_without_staff_notify_email(client, settings, django_capture_on_commit_callbacks):
    settings.STAFF_NOTIFY_EMAIL = []
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/submit/", submission_data()).status_code == 302
    assert mail.outbox == []


def test_a_mail_server_outage_delays_the_staff_mail(settings, monkeypatch):
    settings.STAFF_NOTIFY_EMAIL = ["curation@example.org"]
    calls = []

    def refused(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionRefusedError(111, "Connection refused")
        return 1

    monkeypatch.setattr(tasks, "send_mail", refused)
    with database_backend():
        tasks.send_staff_email.enqueue("Hello", "Body")
        assert run_ready_tasks() == 1
        (retry,) = queued()
        assert retry.args_kwargs["kwargs"] == {"attempt": 2}
        time_passes(61)
        assert run_ready_tasks() == 1
    assert len(calls) == 2 and not queued().exists()


# --- scheduled jobs ----------------------------------------------------------------------------


class _LockHolder:
    """Holds a named lock from another thread (its own database connection), as a second
    process running the same job would."""

    def __init__(self, name: str) -> None:
        self._taken, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(name,), daemon=True)
        self._thread.start()
        assert self._taken.wait(10)

    def _hold(self, name: str) -> None:
        from django.db import connections

        try:
            with locks.try_exclusive(name) as held:
                assert held
                self._taken.set()
                self._release.wait(30)
        finally:
            connections.close_all()

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)


def test_retry_geocodes_takes_failed_and_lost_clinics_but_not_ones_whose_task_is_queued(
    online, capsys
):
    online.default = Reply.found(*NEAR_38117)
    failed = pending_location(address_line1="1 Failed St")
    Location.objects.filter(pk=failed.pk).update(geocode_status=Location.GeocodeStatus.FAILED)
    lost = pending_location(address_line1="2 Lost St")
    Location.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    fresh = pending_location(address_line1="3 Fresh St")  # its task is still in the queue

    call_command("retry_geocodes", "--dry-run")
    out = capsys.readouterr()
    assert "2 location(s) would be geocoded" in out.out and "Nothing was written" in out.out
    assert online.request_count == 0

    call_command("retry_geocodes")
    assert "2 ok" in capsys.readouterr().out
    statuses = dict(Location.objects.values_list("address_line1", "geocode_status"))
    assert statuses == {"1 Failed St": "ok", "2 Lost St": "ok", "3 Fresh St": "pending"}
    assert online.request_count == 2

    call_command("retry_geocodes")  # again: nothing left to do, nothing sent
    assert "0 ok" in capsys.readouterr().out
    assert online.request_count == 2
    assert Location.objects.get(pk=fresh.pk).geocode_status == "pending"


def test_retry_geocodes_started_twice_at_once_runs_once(online, capsys):
    failed = pending_location()
    Location.objects.filter(pk=failed.pk).update(geocode_status=Location.GeocodeStatus.FAILED)
    holder = _LockHolder(tasks.GEOCODING_LOCK)  # the first run, still going
    try:
        call_command("retry_geocodes")
        assert "Another geocoding run holds the provider; nothing done" in capsys.readouterr().out
        assert online.request_count == 0
    finally:
        holder.release()
    call_command("retry_geocodes", verbosity=0)
    assert online.request_count == 1


def test_retry_geocodes_explains_itself():
    result = subprocess.run(
        [sys.executable, "manage.py", "retry_geocodes", "--help"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true"},
        capture_output=True,
        text=True,
    )
    assert "Scheduled job (hourly)" in result.stdout and "--dry-run" in result.stdout


def _aged(path: Path, hours: float) -> Path:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def test_clean_imports_removes_expired_uploads_only(settings, tmp_path, capsys):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    settings.IMPORT_EXPIRY_HOURS = 24
    settings.IMPORT_UPLOAD_DIR.mkdir()
    old = settings.IMPORT_UPLOAD_DIR / "a.csv"
    old.write_text("x" * 1000)
    _aged(old, 25)
    new = settings.IMPORT_UPLOAD_DIR / "b.csv"
    new.write_text("y")

    call_command("clean_imports", "--dry-run")
    out = capsys.readouterr().out
    assert "0 expired import job(s) and 1 expired upload(s) (0.0 MB) would be deleted" in out
    assert old.exists()

    call_command("clean_imports")
    assert "1 expired upload(s)" in capsys.readouterr().out
    assert not old.exists() and new.exists()
    call_command("clean_imports")  # idempotent
    assert "0 expired upload(s)" in capsys.readouterr().out


def test_clean_imports_started_twice_at_once_runs_once(settings, tmp_path, capsys):
    settings.IMPORT_UPLOAD_DIR = tmp_path
    old = tmp_path / "a.csv"
    old.write_text("x")
    _aged(old, 48)
    holder = _LockHolder("clean-imports")
    try:
        call_command("clean_imports")
        assert "Another clean-up is running; nothing done." in capsys.readouterr().out
        assert old.exists()
    finally:
        holder.release()


def test_the_deploy_files_run_the_workers_and_the_scheduled_jobs():
    systemd = ROOT / "deploy" / "systemd"
    worker = (systemd / "practitioner-locator-worker.service").read_text()
    assert "manage.py db_worker --queue-name default --no-reload" in worker
    geocoder = (systemd / "practitioner-locator-geocoder.service").read_text()
    assert "manage.py db_worker --queue-name geocoding --no-reload" in geocoder
    timers = {path.name: path.read_text() for path in systemd.glob("*.timer") if path.is_file()}
    units = " ".join(timers.values())
    for command in ("retry_geocodes", "clean_imports", "prune_db_task_results"):
        assert f"practitioner-locator-manage@{command}.service" in units
        help_text = subprocess.run(
            [sys.executable, "manage.py", command, "--help"],
            cwd=ROOT,
            env={**os.environ, "DEBUG": "true"},
            capture_output=True,
            text=True,
        )
        assert help_text.returncode == 0, help_text.stderr
    env = (ROOT / "deploy" / "env.example").read_text()
    assert "TASKS_BACKEND=database" in env


def test_the_settings_declare_every_queue_the_tasks_use(settings):
    assert settings.TASKS["default"]["QUEUES"] == tasks.QUEUES
    assert tasks.geocode_clinics.queue_name in tasks.QUEUES


def test_readyz_names_the_task_queue_when_its_table_does_not_answer(client):
    from django_tasks_db.models import DBTaskResult

    with database_backend():
        assert client.get("/readyz").json()["checks"]["task_queue"] == "ok"
        table = connection.ops.quote_name(DBTaskResult._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME TO tasks_gone_for_this_test")
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["task_queue"]
    assert ready.json()["checks"]["database"] == "ok"
    assert "tasks_gone" not in ready.content.decode()
