"""Practitioner accounts (django-allauth): what the site changes in allauth's behaviour.

Accounts made here are never staff: the admin stays for the people staff create with
``createsuperuser`` or in the admin itself. Every e-mail allauth sends (codes, verification,
password reset) goes through :func:`practitioners.notify.send_mail_later`.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpRequest

from . import notify


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        request = allauth_context.request
        context = {
            "request": request,
            "email": email,
            "current_site": get_current_site(request),
            **context,
        }
        message = self.render_mail(template_prefix, email, context)
        html_body = ""
        for content, mimetype in getattr(message, "alternatives", []):
            if mimetype == "text/html":
                html_body = str(content)
        notify.send_mail_later(
            subject=str(message.subject),
            body=str(message.body),
            to=list(message.to),
            html_body=html_body,
            from_email=str(message.from_email or ""),
            headers={key: str(value) for key, value in (message.extra_headers or {}).items()},
        )

    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        # Whatever a signup form posts, a practitioner account can never reach the admin.
        user.is_staff = False
        user.is_superuser = False
        return super().save_user(request, user, form, commit=commit)
