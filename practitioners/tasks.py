"""Slow work off the request: geocoding and e-mail run as tasks (Django's tasks API through the
``django-tasks`` backport).

Which backend runs them is ``settings.TASKS`` (``TASKS_BACKEND``): in development and the tests the
immediate backend runs a task at once, in the process that enqueued it, so nothing more is needed;
in production the database backend (``django-tasks-db``) stores it in PostgreSQL and
``manage.py db_worker`` processes, on any host, take it from there. A task survives a restart of
the web server or of the workers: it is a row until a worker has finished it.

Retries: django-tasks has none of its own, so a task that met an outage (the geocoder, the mail
server) enqueues itself again with ``run_after`` pushed back (:data:`RETRY_DELAYS_SECONDS`).
Past the last delay, or on a backend that cannot defer (the immediate one), the work is left for
the scheduled commands (``manage.py retry_geocodes``), so an outage only ever delays it.

Callers enqueue after their transaction commits (:func:`geocode_after_commit`,
:func:`notify_staff`): a worker must see the rows the task is about, and an edit rolled back must
not send anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import smtplib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResult, task, task_backends

from . import geocoding, locks
from .models import Location

logger = logging.getLogger(__name__)

# Geocoding has its own queue so production can give it exactly one worker: the provider's rate
# limit (one request a second for public Nominatim) is counted per process.
GEOCODE_QUEUE = "geocoding"
QUEUES = ["default", GEOCODE_QUEUE]
# Waits before the 2nd, 3rd, ... attempt: a minute, five, half an hour, two hours. Then the hourly
# `retry_geocodes` takes over, with no end.
RETRY_DELAYS_SECONDS = (60, 300, 1800, 7200)
# Locations per geocoding task: a big import becomes many small tasks, each resumable.
GEOCODE_TASK_SIZE = 500
# The lock every geocoding run holds (tasks and the scheduled command), so the provider sees one
# client at a time whatever number of processes is running.
GEOCODING_LOCK = "geocoding"


def retry_delay(attempt: int) -> int | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when no more are scheduled."""
    if attempt < 1 or attempt > len(RETRY_DELAYS_SECONDS):
        return None
    return RETRY_DELAYS_SECONDS[attempt - 1]


def can_defer() -> bool:
    """Whether the configured backend can run a task later (the immediate one cannot)."""
    return bool(task_backends["default"].supports_defer)


def _again(
    task_function, attempt: int, *args: Any, delay: int | None = None, **kwargs: Any
) -> dt.datetime | None:
    """Enqueue ``task_function`` once more, after the backoff for ``attempt`` (or ``delay``
    seconds, keeping the attempt number); returns when it will run, or None when it will not
    (no more retries, or a backend that cannot defer)."""
    next_attempt = attempt if delay is not None else attempt + 1
    delay = retry_delay(attempt) if delay is None else delay
    if delay is None or not can_defer():
        return None
    run_after = timezone.now() + dt.timedelta(seconds=delay)
    task_function.using(run_after=run_after).enqueue(*args, attempt=next_attempt, **kwargs)
    return run_after


# --- geocoding ---------------------------------------------------------------------------------


@task(queue_name=GEOCODE_QUEUE)
def geocode_clinics(location_ids: list[int], force: bool = False, attempt: int = 1) -> dict:
    """Geocode these clinics (those that still need it; see ``geocoding.geocode_locations``).
    The ones the provider did not answer for are tried again later."""
    with locks.try_exclusive(GEOCODING_LOCK) as held:
        if held:
            summary = geocoding.geocode_locations(
                queryset=Location.objects.filter(pk__in=location_ids), force=force
            )
        else:
            summary = None
    waiting = list(
        Location.objects.filter(
            pk__in=location_ids,
            geocode_status__in=[Location.GeocodeStatus.PENDING, Location.GeocodeStatus.FAILED],
        ).values_list("pk", flat=True)
    )
    retry_at = None
    if waiting:
        # Another geocoding run held the provider: try again in a minute, same attempt. Or the
        # provider failed for some of them: back off.
        busy_delay = RETRY_DELAYS_SECONDS[0] if summary is None else None
        retry_at = _again(geocode_clinics, attempt, waiting, delay=busy_delay)
        if retry_at is None:
            logger.warning(
                "%d clinic(s) not geocoded after attempt %d; left for manage.py retry_geocodes",
                len(waiting),
                attempt,
            )
    result = dataclasses.asdict(summary) if summary is not None else {"busy": True}
    result.update(
        attempt=attempt,
        waiting=len(waiting),
        retry_at=retry_at.isoformat() if retry_at else None,
    )
    return result


def geocode_in_background(*, location_ids: Iterable[int], force: bool = False) -> list[TaskResult]:
    """Enqueue geocoding for these clinics now, in tasks of ``GEOCODE_TASK_SIZE``. Call it when
    the clinics are committed (or use :func:`geocode_after_commit`)."""
    ids = sorted(set(location_ids))
    return [
        geocode_clinics.enqueue(ids[start : start + GEOCODE_TASK_SIZE], force)
        for start in range(0, len(ids), GEOCODE_TASK_SIZE)
    ]


def geocode_after_commit(*, location_ids: Iterable[int], force: bool = False) -> None:
    """Geocode these clinics once the current transaction commits (at once outside one)."""
    ids = list(location_ids)
    if ids:
        transaction.on_commit(lambda: geocode_in_background(location_ids=ids, force=force))


def summary_of(results: list[TaskResult]) -> geocoding.GeocodeSummary | None:
    """The geocoding summary of tasks that already ran (the immediate backend), else None."""
    if not results or not all(result.is_finished for result in results):
        return None
    total = geocoding.GeocodeSummary(provider=geocoding.current_provider())
    for result in results:
        values = result.return_value or {}
        for name in ("ok", "zip_fallback", "failed", "cached", "requests", "skipped", "superseded"):
            setattr(total, name, getattr(total, name) + int(values.get(name) or 0))
        total.stopped = values.get("stopped") or total.stopped
    return total


# --- e-mail ------------------------------------------------------------------------------------


@task()
def send_staff_email(subject: str, body: str, attempt: int = 1) -> int:
    """Mail ``STAFF_NOTIFY_EMAIL``; a mail server that is down delays the message, never loses
    it (until the retries run out, when the failure is logged and the task marked failed)."""
    recipients = list(settings.STAFF_NOTIFY_EMAIL)
    if not recipients:
        return 0
    try:
        return send_mail(settings.EMAIL_SUBJECT_PREFIX + subject, body, None, recipients)
    except (OSError, smtplib.SMTPException) as error:
        if _again(send_staff_email, attempt, subject, body) is not None:
            logger.warning("Staff mail %r not sent (%s); will retry", subject, error)
            return 0
        raise


@task()
def send_email(
    subject: str,
    body: str,
    to: list[str],
    html_body: str = "",
    from_email: str = "",
    headers: dict[str, str] | None = None,
    attempt: int = 1,
) -> int:
    """Mail one message to ``to`` (a practitioner's code, a claim decision, a reminder): like
    :func:`send_staff_email`, a mail server that is down delays it and never loses it."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=from_email or None,
        to=to,
        headers=headers or None,
    )
    if html_body:
        message.attach_alternative(html_body, "text/html")
    try:
        return message.send()
    except (OSError, smtplib.SMTPException) as error:
        again = _again(send_email, attempt, subject, body, to, html_body, from_email, headers)
        if again is not None:
            logger.warning("Mail %r to %s not sent (%s); will retry", subject, to, error)
            return 0
        logger.error("could not send %r to %s (%s)", subject, to, error)
        raise


def notify_staff(*, subject: str, body: str) -> None:
    """Tell staff something arrived, by mail from a task after the commit (if
    ``STAFF_NOTIFY_EMAIL`` is set)."""
    if settings.STAFF_NOTIFY_EMAIL:
        transaction.on_commit(lambda: send_staff_email.enqueue(subject, body))


def site_url(path: str) -> str:
    """An absolute link for a mail (``SITE_URL`` + path)."""
    return f"{settings.SITE_URL.rstrip('/')}{path}"


# --- the admin's CSV import ----------------------------------------------------------------------


@task()
def preview_import(job_id: int) -> dict:
    """The dry run of an uploaded CSV (practitioners/imports.py)."""
    from . import imports  # the import job imports the ingest code, which enqueues geocoding

    return imports.run_phase(job_id=job_id, phase="preview")


@task()
def run_import(job_id: int) -> dict:
    """The confirmed import of an uploaded CSV, from the stored file."""
    from . import imports

    return imports.run_phase(job_id=job_id, phase="import")


# --- the sitemap's place pages -------------------------------------------------------------------

# The lock every refresh of the place list holds (the task and the scheduled command): two at once
# would each delete and rewrite the whole list.
PLACE_PAGES_LOCK = "place-pages"


@task()
def refresh_place_pages(attempt: int = 1) -> dict:
    """Work the sitemap's list of place pages out again (place_pages.py). Enqueued after a commit
    that published, suspended or imported listings; if another refresh is running (it may have
    read the clinics before that commit), this one runs again a minute later."""
    from . import place_pages

    with locks.try_exclusive(PLACE_PAGES_LOCK) as held:
        if held:
            return dataclasses.asdict(place_pages.refresh())
    retry_at = _again(refresh_place_pages, attempt, delay=RETRY_DELAYS_SECONDS[0])
    if retry_at is None:
        logger.warning("place pages not refreshed (another refresh running); left for the timer")
    return {"busy": True, "retry_at": retry_at.isoformat() if retry_at else None}
