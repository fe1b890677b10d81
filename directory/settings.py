"""Settings for the Practitioner Locator.

One file for every environment. Everything that differs between a laptop and production is read
from the environment through the small typed helpers below; with nothing set, the site runs on
SQLite with the offline ZIP-centroid geocoder, which is what `make run` and the tests want.
"""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Under pytest the suite needs no secrets and fast password hashing.
TESTING = env_bool("TESTING", "pytest" in sys.modules)

# A development key is only acceptable while DEBUG is on; production must bring its own, like
# healthchecks refuses to run with its placeholder.
_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG or TESTING else "")
if not SECRET_KEY or (SECRET_KEY == _DEV_SECRET_KEY and not (DEBUG or TESTING)):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set a long random SECRET_KEY in the environment, "
        "or DEBUG=true for local development."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "simple_history",
    "import_export",
    "practitioners",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "directory.urls"
WSGI_APPLICATION = "directory.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "practitioners.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while an import writes; the pragmas are cheap and safe. A
    # 256 MB page cache (filled only as pages are read) keeps a million clinics' indexes in
    # memory while an import writes them.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;"
    )
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Every query here is short. PostgreSQL's JIT, triggered by a pessimistic cost estimate,
    # spent 30-540 ms compiling a 3 ms search query, and a parallel plan costs more to start
    # than the search takes on a small machine (see bench/search_bench.py).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", "-c jit=off -c max_parallel_workers_per_gather=0"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": env_str("CACHE_BACKEND", "django.core.cache.backends.locmem.LocMemCache"),
        "LOCATION": env_str("CACHE_LOCATION", "practitioner-locator"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "America/Chicago")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Practitioner Locator API",
    "DESCRIPTION": "Published manual-therapy practitioners near a US ZIP code, by certification.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Search
SEARCH_PAGE_SIZE = 20
SEARCH_DEFAULT_RADIUS_MI = 25
SEARCH_RADIUS_CHOICES_MI = (5, 10, 25, 50, 100, 250)
SEARCH_MAX_RADIUS_MI = 500
# Counting every match in a dense city costs more than the page itself; past this many the UI says
# "more than N" instead of an exact number.
SEARCH_COUNT_CAP = env_int("SEARCH_COUNT_CAP", 1000)

# Curation: a certificate verified longer ago than this, or expiring within the warning window,
# goes back to the staff work queue; the public sees "verified over a year ago".
VERIFICATION_MAX_AGE_DAYS = env_int("VERIFICATION_MAX_AGE_DAYS", 365)
CERTIFICATION_EXPIRY_WARNING_DAYS = env_int("CERTIFICATION_EXPIRY_WARNING_DAYS", 60)

# Geocoding (see practitioners/geocoding.py and the README). "zip" (the offline ZIP centroid)
# never leaves the machine: it is the default with DEBUG on (development, the demo) and always
# under the tests, which point an online provider at their own loopback server when they need one.
# Production defaults to Nominatim.
GEOCODER = "zip" if TESTING else env_str("GEOCODER", "zip" if DEBUG else "nominatim").lower()
if GEOCODER not in {"nominatim", "photon", "pelias", "zip"}:
    raise ImproperlyConfigured(
        f"GEOCODER must be nominatim, photon, pelias or zip, not {GEOCODER!r}"
    )
GEOCODER_DOMAIN = env_str("GEOCODER_DOMAIN")
GEOCODER_SCHEME = env_str("GEOCODER_SCHEME", "https")
GEOCODER_USER_AGENT = env_str("GEOCODER_USER_AGENT", "practitioner-locator")
GEOCODER_API_KEY = env_str("GEOCODER_API_KEY")
GEOCODER_TIMEOUT = env_float("GEOCODER_TIMEOUT", 5.0)
GEOCODER_MIN_DELAY_SECONDS = env_float("GEOCODER_MIN_DELAY_SECONDS", 1.0)
# How far an address's geocode may land from its ZIP centroid before we distrust it.
GEOCODER_MAX_ZIP_DISTANCE_MI = env_float("GEOCODER_MAX_ZIP_DISTANCE_MI", 30.0)

# Public forms (listing submissions, problem reports): POSTs per IP per hour.
PUBLIC_FORM_RATE_LIMIT = env_int("PUBLIC_FORM_RATE_LIMIT", 10)
PUBLIC_FORM_RATE_WINDOW_SECONDS = env_int("PUBLIC_FORM_RATE_WINDOW_SECONDS", 3600)

# Map tiles for the results map (issue: the search in a real browser).
MAP_TILE_URL = env_str("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env_str(
    "MAP_TILE_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
