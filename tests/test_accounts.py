"""Practitioner accounts (django-allauth): sign up and verify the address, sign in with a password
or a one-time code sent by e-mail, reset a password without learning whether an address has an
account, allauth's rate limits, and accounts that never reach the admin. Mail leaves through
practitioners/notify.py; one test delivers through a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.browsing import follow, form, local_path, submit, text_of
from tests.smtp_server import smtp_server
from tests.test_browser import (  # noqa: F401 - fixtures, used by name
    browser,
    map_settings,
    open_page,
)
from tests.test_browser import pytestmark as browser_marks

pytestmark = pytest.mark.django_db


def browser_test(test):
    """The browser tests' marks (skipped without Chromium; a transactional database)."""
    for mark in reversed(browser_marks):
        test = mark(test)
    return test


PASSWORD = "a-long-unusual-passphrase-42"


def practitioner_account(email: str = "jane@example.org", password: str = PASSWORD):
    """A signed-up practitioner whose address is verified."""
    user = get_user_model().objects.create_user(email, email, password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def signed_in_as(client: Client) -> str | None:
    user = client.get("/").wsgi_request.user
    return user.email if user.is_authenticated else None


def first_link(body: str) -> str:
    found = re.search(r"https?://testserver(/\S+)", body)
    assert found, body
    return found.group(1)


def code_in(body: str) -> str:
    found = re.search(r"^\s*([A-Z0-9]{3,8}(?:-[A-Z0-9]{3,8})?)\s*$", body, re.MULTILINE)
    assert found, body
    return found.group(1)


def sign_in_with_password(client: Client, email: str, password: str):
    page = client.get("/accounts/login/")
    filled = form(page, "main form").set("login", email).set("password", password)
    return submit(client, filled)


def test_signing_up_sends_a_verification_link_and_the_verified_address_signs_in(
    django_capture_on_commit_callbacks,
):
    client = Client()
    home = client.get("/")
    page = follow(client, home, text="Practitioners: sign in")
    signup = follow(client, page, text="sign up")
    filled = (
        form(signup, "main form")
        .set("email", "new@example.org")
        .set("password1", PASSWORD)
        .set("password2", PASSWORD)
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = submit(client, filled)
    assert answer.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.org"]
    assert "Confirm" in message.subject
    # Not signed in until the address is confirmed.
    assert signed_in_as(client) is None

    confirm = client.get(first_link(message.body))
    confirmed = submit(client, form(confirm, "main form"))
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(email="new@example.org").verified

    fresh = Client()
    sign_in_with_password(fresh, "new@example.org", PASSWORD)
    assert signed_in_as(fresh) == "new@example.org"
    user = get_user_model().objects.get(email="new@example.org")
    assert not user.is_staff and not user.is_superuser


def test_a_one_time_code_sent_by_e_mail_signs_in_once(django_capture_on_commit_callbacks):
    practitioner_account()
    client = Client()
    login = client.get("/accounts/login/")
    request_page = follow(client, login, text="Send me a sign-in code")
    with django_capture_on_commit_callbacks(execute=True):
        sent = submit(client, form(request_page, "main form").set("email", "jane@example.org"))
    assert sent.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["jane@example.org"]
    assert "code" in mail.outbox[0].subject.lower()
    code = code_in(mail.outbox[0].body)

    confirm_page = client.get(local_path(sent["Location"]))
    wrong = submit(client, form(confirm_page, "main form").set("code", "ZZZZZZ"))
    assert signed_in_as(client) is None
    assert wrong.status_code == 200
    done = submit(client, form(confirm_page, "main form").set("code", code))
    assert done.status_code == 302
    assert signed_in_as(client) == "jane@example.org"

    # The code is spent: another browser cannot sign in with it.
    other = Client()
    other_page = follow(other, other.get("/accounts/login/"), text="Send me a sign-in code")
    with django_capture_on_commit_callbacks(execute=True):
        again = submit(other, form(other_page, "main form").set("email", "jane@example.org"))
    confirm_again = other.get(local_path(again["Location"]))
    submit(other, form(confirm_again, "main form").set("code", code))
    assert signed_in_as(other) is None


def test_password_reset_answers_the_same_whether_or_not_the_address_has_an_account(
    django_capture_on_commit_callbacks,
):
    practitioner_account()
    answers = {}
    for email in ("jane@example.org", "nobody@example.org"):
        client = Client()
        page = client.get("/accounts/password/reset/")
        with django_capture_on_commit_callbacks(execute=True):
            sent = submit(client, form(page, "main form").set("email", email))
        assert sent.status_code == 302
        done = client.get(local_path(sent["Location"]))
        answers[email] = (sent["Location"], text_of(done, "main"))
    assert answers["jane@example.org"] == answers["nobody@example.org"]

    to_owner = next(m for m in mail.outbox if m.to == ["jane@example.org"])
    reset_page = Client().get(first_link(to_owner.body), follow=True)
    assert "password" in text_of(reset_page, "main").lower()


def test_wrong_passwords_are_rate_limited_by_allauth():
    practitioner_account()
    client = Client()
    for _ in range(5):
        sign_in_with_password(client, "jane@example.org", "wrong-password")
    refused = sign_in_with_password(client, "jane@example.org", PASSWORD)
    assert signed_in_as(client) is None
    assert "Too many failed login attempts" in text_of(refused, "main")


def test_a_practitioner_account_never_reaches_the_admin():
    practitioner_account()
    client = Client()
    sign_in_with_password(client, "jane@example.org", PASSWORD)
    assert signed_in_as(client) == "jane@example.org"
    admin = client.get("/admin/")
    assert admin.status_code == 302
    assert "/admin/login/" in admin["Location"]
    page = client.get("/admin/login/?next=/admin/")
    filled = form(page, "#login-form").set("username", "jane@example.org").set("password", PASSWORD)
    submit(client, filled)
    assert client.get("/admin/").status_code == 302


def test_a_signup_form_cannot_make_itself_staff(django_capture_on_commit_callbacks):
    client = Client()
    page = client.get("/accounts/signup/")
    filled = (
        form(page, "main form")
        .set("email", "sneaky@example.org")
        .set("password1", PASSWORD)
        .set("password2", PASSWORD)
        .set("is_staff", "on")
        .set("is_superuser", "on")
    )
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, filled)
    user = get_user_model().objects.get(email="sneaky@example.org")
    assert not user.is_staff and not user.is_superuser


def test_a_sign_in_code_is_delivered_through_a_real_smtp_server(
    settings, django_capture_on_commit_callbacks
):
    practitioner_account()
    with smtp_server() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.DEFAULT_FROM_EMAIL = "Directory <no-reply@directory.test>"
        client = Client()
        page = client.get("/accounts/login/code/")
        with django_capture_on_commit_callbacks(execute=True):
            submit(client, form(page, "main form").set("email", "jane@example.org"))
        received = server.wait_for_messages(1)
    assert len(received) == 1
    envelope, message = received[0]
    assert envelope.rcpt_tos == ["jane@example.org"]
    assert envelope.mail_from == "no-reply@directory.test"
    assert message["To"] == "jane@example.org"
    assert "code" in message["Subject"].lower()
    body = message.get_body(preferencelist=("plain",)).get_content()
    code = code_in(body)
    confirm = client.get("/accounts/login/code/confirm/")
    submit(client, form(confirm, "main form").set("code", code))
    assert signed_in_as(client) == "jane@example.org"


def test_a_failing_mail_server_is_logged_and_the_page_still_answers(
    settings, django_capture_on_commit_callbacks, caplog
):
    practitioner_account()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens there
    settings.EMAIL_TIMEOUT = 2
    client = Client()
    page = client.get("/accounts/login/code/")
    with django_capture_on_commit_callbacks(execute=True):
        answer = submit(client, form(page, "main form").set("email", "jane@example.org"))
    assert answer.status_code == 302
    assert "could not send" in caplog.text


@browser_test
def test_removing_an_e_mail_address_asks_first_and_removes_it_once_confirmed(
    open_page, live_server, client, settings
):
    """allauth's confirmation (its static script) runs under the site's CSP: dismissing it
    keeps the address, accepting it removes it. open_page fails the test on a CSP violation."""
    user = practitioner_account()
    EmailAddress.objects.create(user=user, email="old@example.org", verified=True)
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    page = open_page("/static/css/site.css")
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.goto("/accounts/email/")
    page.locator("input[name=email][value='old@example.org']").check()
    asked: list[str] = []

    def answer(accept: bool):
        def handle(dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(accept=False))
    page.get_by_role("button", name="Remove").click()
    assert asked == ["Do you really want to remove the selected email address?"]
    assert EmailAddress.objects.filter(email="old@example.org").exists()

    page.once("dialog", answer(accept=True))
    with page.expect_navigation():
        page.get_by_role("button", name="Remove").click()
    assert len(asked) == 2
    assert "Removed email address old@example.org" in page.locator("main").inner_text()
    assert not EmailAddress.objects.filter(email="old@example.org").exists()
    assert page.locator("input[name=email][value='old@example.org']").count() == 0
    assert not page.script_errors
