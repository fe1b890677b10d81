"""E-mail settings come from the environment: EMAIL_URL, or EMAIL_HOST and friends; the console
under DEBUG (make run) when neither is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
)


def email_settings(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMAIL_") and k not in {"DEFAULT_FROM_EMAIL", "TESTING", "DEBUG"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "directory.settings", "DEBUG": "true", **env})
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {NAMES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_make_run_prints_mail_on_the_console():
    assert email_settings()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_email_url_sets_the_smtp_server_with_starttls_and_quoted_credentials():
    found = email_settings(
        EMAIL_URL="smtp://mailer%40example.org:p%40ss@mail.example.org:587?tls=true",
        DEFAULT_FROM_EMAIL="Directory <no-reply@example.org>",
    )
    assert found == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.org",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer@example.org",
        "EMAIL_HOST_PASSWORD": "p@ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "DEFAULT_FROM_EMAIL": "Directory <no-reply@example.org>",
    }


def test_smtps_means_implicit_tls_on_465():
    found = email_settings(EMAIL_URL="smtps://u:p@mail.example.org")
    assert (found["EMAIL_PORT"], found["EMAIL_USE_SSL"], found["EMAIL_USE_TLS"]) == (
        465,
        True,
        False,
    )


def test_the_usual_email_host_settings_work_without_a_url():
    found = email_settings(
        EMAIL_HOST="relay.example.org", EMAIL_PORT="2525", EMAIL_USE_TLS="true", EMAIL_HOST_USER="u"
    )
    assert found["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"], found["EMAIL_USE_TLS"]) == (
        "relay.example.org",
        2525,
        True,
    )


def test_an_unknown_email_url_scheme_is_a_clear_error():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "directory.settings", "DEBUG": "true", "EMAIL_URL": "ftp://x"}
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "EMAIL_URL must start with smtp://" in result.stderr
