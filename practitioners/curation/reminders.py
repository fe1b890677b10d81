"""The 90-day rhythm: every owner whose last confirmation is ``OWNER_CONFIRMATION_DAYS`` old is
e-mailed a signed link that confirms the listing without signing in (it works once, for
``CONFIRMATION_LINK_DAYS``) and a link to the dashboard.

A reminder is a row (``ConfirmationReminder``), unique per listing and due date, so a second
run the same day, or the next day before the owner acts, e-mails no one twice for one due date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .. import notify, tasks
from ..models import ConfirmationReminder, Practitioner
from .owners import confirm_listing

SALT = "practitioners.confirm-listing"


class LinkRefused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def due_on(practitioner: Practitioner) -> dt.date | None:
    """When the owner should next confirm: 90 days after their last confirmation (or the claim)."""
    base = practitioner.owner_confirmed_on
    if base is None and practitioner.claimed_at is not None:
        base = timezone.localdate(practitioner.claimed_at)
    if base is None:
        return None
    return base + dt.timedelta(days=settings.OWNER_CONFIRMATION_DAYS)


@dataclass
class ReminderRun:
    due: list[tuple[Practitioner, dt.date]] = field(default_factory=list)
    sent: int = 0
    already_sent: int = 0
    no_address: int = 0

    def line(self, *, dry_run: bool) -> str:
        if dry_run:
            return f"{len(self.due)} owner(s) would be reminded (dry run: nothing sent)."
        return (
            f"{self.sent} reminder(s) sent; {self.already_sent} already sent for that due date; "
            f"{self.no_address} owner(s) without an e-mail address."
        )


def due_reminders(on: dt.date | None = None) -> list[tuple[Practitioner, dt.date]]:
    """Owned, published listings whose confirmation is due by ``on`` and whose owner has not
    been reminded for that due date."""
    on = on or timezone.localdate()
    owned = (
        Practitioner.objects.published()
        .filter(claimed_by__isnull=False)
        .select_related("claimed_by")
        .order_by("pk")
    )
    candidates = [(p, due) for p in owned if (due := due_on(p)) is not None and due <= on]
    sent = set(
        ConfirmationReminder.objects.filter(
            practitioner_id__in=[p.pk for p, _ in candidates]
        ).values_list("practitioner_id", "due_on")
    )
    return [(p, due) for p, due in candidates if (p.pk, due) not in sent]


def link_for(reminder: ConfirmationReminder) -> str:
    token = signing.dumps(reminder.pk, salt=SALT)
    return tasks.site_url(reverse("practitioners:confirm-link", kwargs={"token": token}))


def send_reminder(*, practitioner: Practitioner, due: dt.date) -> bool:
    """E-mail one reminder; False when one was already sent for this due date."""
    owner = practitioner.claimed_by
    try:
        with transaction.atomic():
            reminder = ConfirmationReminder.objects.create(
                practitioner=practitioner, due_on=due, sent_to=owner.email
            )
            context = {
                "practitioner": practitioner,
                "confirm_url": link_for(reminder),
                "dashboard_url": tasks.site_url(reverse("practitioners:my-listing")),
                "link_days": settings.CONFIRMATION_LINK_DAYS,
                "last_confirmed": practitioner.owner_confirmed_on,
            }
            notify.send_mail_later(
                subject=render_to_string("claims/email/reminder_subject.txt", context).strip(),
                body=render_to_string("claims/email/reminder_message.txt", context),
                to=[owner.email],
            )
    except IntegrityError:  # another run got there first: the unique constraint says so
        return False
    return True


def send_reminders(
    *,
    on: dt.date | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReminderRun:
    run = ReminderRun(due=due_reminders(on))
    if dry_run:
        return run
    for practitioner, due in run.due:
        if not practitioner.claimed_by.email:
            run.no_address += 1
        elif send_reminder(practitioner=practitioner, due=due):
            run.sent += 1
        else:
            run.already_sent += 1
        if progress is not None:
            progress(1)
    return run


def reminder_for_link(token: str) -> ConfirmationReminder:
    """The reminder a link names, if the link is genuine, not expired and not used."""
    try:
        pk = signing.loads(
            token, salt=SALT, max_age=dt.timedelta(days=settings.CONFIRMATION_LINK_DAYS)
        )
    except signing.SignatureExpired as expired:
        raise LinkRefused(
            "This link has expired. Sign in and open My listing to confirm it there."
        ) from expired
    except signing.BadSignature as bad:
        raise LinkRefused("This link is not valid. Sign in and open My listing instead.") from bad
    reminder = ConfirmationReminder.objects.select_related("practitioner").filter(pk=pk).first()
    if reminder is None or reminder.practitioner.claimed_by_id is None:
        raise LinkRefused("This link is no longer valid. Sign in and open My listing instead.")
    if reminder.used_at is not None:
        raise LinkRefused("This link has been used already: your listing is confirmed.")
    return reminder


def confirm_by_link(*, token: str) -> Practitioner:
    """The owner pressed "Yes, still accurate" on the page the link opened."""
    with transaction.atomic():
        reminder = reminder_for_link(token)
        used = ConfirmationReminder.objects.filter(pk=reminder.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if not used:  # two clicks at once: the first one counts
            raise LinkRefused("This link has been used already: your listing is confirmed.")
        confirm_listing(practitioner=reminder.practitioner, owner=None)
    return reminder.practitioner
