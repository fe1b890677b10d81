"""Signing in to the admin: django-axes locks a username + address after 5 wrong passwords,
superusers see the locks, a command clears them; staff can be required to add a TOTP code
(django-otp); the admin's path is a setting."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import clear_url_caches
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browsing import form, submit, text_of

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def staff():
    return get_user_model().objects.create_user(
        "ops", "ops@example.org", PASSWORD, is_staff=True, is_superuser=False
    )


def sign_in(client: Client, username: str, password: str, **fields: str):
    page = client.get("/admin/login/?next=/admin/")
    filled = form(page, "#login-form").set("username", username).set("password", password)
    for name, value in fields.items():
        filled.set(name, value)
    return submit(client, filled)


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_five_wrong_passwords_lock_that_username_from_that_address_even_for_the_right_one(staff):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        wrong = sign_in(client, "ops", "not-the-password")
        assert wrong.status_code in (200, 429)
    locked = sign_in(client, "ops", PASSWORD)
    assert locked.status_code == 429
    assert "Sign-in locked" in text_of(locked)
    assert "30 minutes" in text_of(locked)
    assert not signed_in(client)

    # The pair is locked, not the account: the same person from another network gets in.
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    sign_in(elsewhere, "ops", PASSWORD)
    assert signed_in(elsewhere)


def test_four_wrong_passwords_then_the_right_one_signs_in_and_resets_the_count(staff):
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(4):
        sign_in(client, "ops", "nope")
    sign_in(client, "ops", PASSWORD)
    assert signed_in(client)


def test_superusers_see_the_locks_in_the_admin_and_axes_reset_clears_them(staff):
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        sign_in(client, "ops", "wrong")
    assert sign_in(client, "ops", PASSWORD).status_code == 429

    get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    boss = Client(REMOTE_ADDR="192.0.2.1")
    sign_in(boss, "root", PASSWORD)
    attempts = boss.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200
    assert "ops" in text_of(attempts, "#result_list")
    assert "203.0.113.9" in text_of(attempts, "#result_list")
    # Plain staff do not see them.
    assert client.get("/admin/axes/accessattempt/").status_code in (302, 403)

    out = StringIO()
    call_command("axes_reset", stdout=out)
    sign_in(client, "ops", PASSWORD)
    assert signed_in(client)


def test_behind_one_trusted_proxy_locks_follow_the_visitor_not_the_proxy(staff, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    proxy = "127.0.0.1"
    attacker = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50")
    for _ in range(5):
        sign_in(attacker, "ops", "guess")
    assert sign_in(attacker, "ops", PASSWORD).status_code == 429
    # Another visitor through the same proxy is not locked out by the attacker.
    colleague = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.77")
    sign_in(colleague, "ops", PASSWORD)
    assert signed_in(colleague)


def test_with_otp_required_a_password_alone_does_not_open_the_admin(staff, settings):
    settings.ADMIN_REQUIRE_OTP = True
    client = Client()
    page = sign_in(client, "ops", PASSWORD)
    assert page.status_code == 200
    assert not signed_in(client)
    # Even a session signed in by password elsewhere is sent to the sign-in page.
    client.force_login(staff)
    assert client.get("/admin/").status_code == 302


def test_an_enrolled_authenticator_code_signs_staff_in(staff, settings):
    settings.ADMIN_REQUIRE_OTP = True
    out = StringIO()
    call_command("enrol_totp", "ops", stdout=out)
    device = TOTPDevice.objects.get(user=staff)
    assert "otpauth://totp/" in out.getvalue()
    assert "secret=" in out.getvalue()

    client = Client()
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"
    sign_in(client, "ops", PASSWORD, otp_device=device.persistent_id, otp_token=code)
    assert signed_in(client)

    # A wrong code does not (and django-otp then slows further guesses down).
    other = Client()
    wrong = "000000" if code != "000000" else "111111"
    refused = sign_in(other, "ops", PASSWORD, otp_device=device.persistent_id, otp_token=wrong)
    assert refused.status_code == 200
    assert not signed_in(other)


def test_enrol_totp_dry_run_writes_nothing_and_refuses_non_staff(staff):
    out = StringIO()
    call_command("enrol_totp", "ops", "--dry-run", stdout=out)
    assert "Would enrol" in out.getvalue()
    assert not TOTPDevice.objects.exists()
    get_user_model().objects.create_user("visitor", password=PASSWORD)
    with pytest.raises(Exception, match="not staff"):
        call_command("enrol_totp", "visitor")


@pytest.fixture
def admin_url(settings):
    """Reload the URLconf under a changed ADMIN_URL, and restore it afterwards."""
    import directory.urls

    def use(path: str) -> None:
        settings.ADMIN_URL = path
        importlib.reload(directory.urls)
        clear_url_caches()

    yield use
    settings.ADMIN_URL = "admin"
    importlib.reload(directory.urls)
    clear_url_caches()


def test_the_admin_lives_at_admin_url_and_not_at_admin(staff, admin_url, client):
    admin_url("staff-desk")
    assert client.get("/admin/").status_code == 404
    login = client.get("/staff-desk/", follow=True)
    assert login.redirect_chain[-1][0].startswith("/staff-desk/login/")
    filled = form(login, "#login-form").set("username", "ops").set("password", PASSWORD)
    submit(client, filled)
    assert client.get("/staff-desk/").status_code == 200
