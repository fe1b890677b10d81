"""Every e-mail the site sends leaves through :func:`send_mail_later`.

One function so that sending becomes a background task with a one-line change (enqueue instead
of the direct call) once the task worker lands: the arguments are plain, JSON-serialisable
values for that reason. Until then the message is sent after the surrounding transaction
commits, so a rolled-back claim never e-mails anyone, and a failing mail server is logged
rather than turned into a 500 for the person who asked for the code.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

logger = logging.getLogger("practitioners.notify")


def deliver(
    *,
    subject: str,
    body: str,
    to: list[str],
    html_body: str = "",
    from_email: str = "",
    headers: dict[str, str] | None = None,
) -> None:
    """Send one message now through Django's configured e-mail backend."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers=headers or None,
    )
    if html_body:
        message.attach_alternative(html_body, "text/html")
    message.send()


def _deliver_logged(**message) -> None:
    try:
        deliver(**message)
    except Exception:  # the mail server is down: the request that asked must still succeed
        logger.exception("could not send %r to %s", message.get("subject"), message.get("to"))


def send_mail_later(
    *,
    subject: str,
    body: str,
    to: list[str],
    html_body: str = "",
    from_email: str = "",
    headers: dict[str, str] | None = None,
) -> None:
    """Send once the current transaction commits (at once outside one)."""
    message = {
        "subject": subject,
        "body": body,
        "to": list(to),
        "html_body": html_body,
        "from_email": from_email,
        "headers": dict(headers or {}),
    }
    transaction.on_commit(lambda: _deliver_logged(**message))
