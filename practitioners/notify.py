"""Every e-mail to a practitioner leaves through :func:`send_mail_later`: allauth's codes and
links (``accounts.py``), claims, owners' notices and the 90-day reminders.

The message is enqueued as the ``send_email`` background task (``tasks.py``) once the
surrounding transaction commits, so a rolled-back claim never e-mails anyone and a slow or
failing mail server never holds a request (the task retries with backoff). The arguments are
plain, JSON-serialisable values for the task queue.
"""

from __future__ import annotations

from django.db import transaction


def send_mail_later(
    *,
    subject: str,
    body: str,
    to: list[str],
    html_body: str = "",
    from_email: str = "",
    headers: dict[str, str] | None = None,
) -> None:
    """Send from a task once the current transaction commits (at once outside one)."""
    from .tasks import send_email  # tasks imports the models; notify is imported by them

    arguments = (subject, body, list(to), html_body, from_email, dict(headers or {}))
    transaction.on_commit(lambda: send_email.enqueue(*arguments))
