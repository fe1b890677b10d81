"""Settings read the environment; production refuses to start without a real SECRET_KEY."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "TESTING", "DATABASE_URL"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "directory.settings", **env})
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = load_settings(TESTING="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_the_development_key():
    result = load_settings(
        TESTING="false", SECRET_KEY="dev-only-insecure-key-do-not-use-in-production"
    )
    assert result.returncode != 0


def test_development_defaults_to_sqlite_and_database_url_switches_to_postgresql():
    assert load_settings(DEBUG="true").stdout.strip() == "django.db.backends.sqlite3"
    result = load_settings(
        TESTING="false", SECRET_KEY="x" * 50, DATABASE_URL="postgres://u@127.0.0.1/db"
    )
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_a_malformed_boolean_is_a_clear_error():
    result = load_settings(DEBUG="maybe")
    assert "DEBUG must be true or false" in result.stderr
