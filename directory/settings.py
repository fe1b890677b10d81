"""Settings for the Practitioner Locator.

One file for every environment. Everything that differs between a laptop and production is read
from the environment through the small typed helpers below; with nothing set, the site runs on
SQLite with the offline ZIP-centroid geocoder, which is what `make run` and the tests want.
"""

import datetime
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from csp import constants as csp
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


def env_email(name: str) -> dict:
    """The e-mail settings an EMAIL_URL stands for (empty when it is not set)."""
    value = env_str(name)
    if not value:
        return {}
    url = urlsplit(value)
    backends = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "dummy": "django.core.mail.backends.dummy.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
        "submission": "django.core.mail.backends.smtp.EmailBackend",
    }
    if url.scheme not in backends:
        raise ImproperlyConfigured(
            f"{name} must start with smtp://, smtps://, submission://, console:// or locmem://"
        )
    query = {key: values[-1].lower() for key, values in parse_qs(url.query).items()}
    try:
        port = url.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} has a port that is not a number") from exc
    return {
        "EMAIL_BACKEND": backends[url.scheme],
        "EMAIL_HOST": url.hostname or "localhost",
        "EMAIL_PORT": port or {"smtps": 465, "submission": 587}.get(url.scheme, 25),
        "EMAIL_HOST_USER": unquote(url.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(url.password or ""),
        "EMAIL_USE_TLS": url.scheme == "submission" or query.get("tls") in {"1", "true", "yes"},
        "EMAIL_USE_SSL": url.scheme == "smtps" or query.get("ssl") in {"1", "true", "yes"},
    }


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

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
if TESTING and "testserver" not in ALLOWED_HOSTS:
    # Django's test client's host; never accepted by a production process.
    ALLOWED_HOSTS.append("testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The Django admin's path, without slashes (a path that is not /admin/ draws fewer robots).
ADMIN_URL = env_str("ADMIN_URL", "admin").strip("/") or "admin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "simple_history",
    "import_export",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "practitioners",
]

MIDDLEWARE = [
    # First, so every response (errors included) carries the request id and is logged once.
    "practitioners.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "practitioners.middleware.StaticFilesMiddleware",
    "practitioners.middleware.ContentSecurityPolicyMiddleware",
    "practitioners.middleware.PermissionsPolicyMiddleware",
    "practitioners.middleware.DatabaseUnavailableMiddleware",
    "practitioners.routers.ReplicaReadsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
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

DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 60)
# Seconds a new PostgreSQL connection may take before the page answers 503 instead of hanging.
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 3)


def _database(url: str) -> dict:
    database = dj_database_url.parse(
        url, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=DB_CONN_MAX_AGE > 0
    )
    if database["ENGINE"] == "django.db.backends.postgresql":
        # Every query here is short. PostgreSQL's JIT, triggered by a pessimistic cost estimate,
        # spent 30-540 ms compiling a 3 ms search query, and a parallel plan costs more to start
        # than the search takes on a small machine (see bench/search_bench.py).
        options = database.setdefault("OPTIONS", {})
        options.setdefault("options", "-c jit=off -c max_parallel_workers_per_gather=0")
        options.setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
    return database


DATABASES = {"default": _database(env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
# Streaming replicas (PostgreSQL's own replication) for the public pages' reads; see
# practitioners/routers.py for which requests read there. Under the tests each replica is a
# mirror of the test database, so the suite runs its reads through the same routing.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS")
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    DATABASES[f"replica{_number}"] = _database(_url)
    if TESTING:
        DATABASES[f"replica{_number}"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["practitioners.routers.PrimaryReplicaRouter"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while an import writes; the pragmas are cheap and safe. A
    # 256 MB page cache (filled only as pages are read) keeps a million clinics' indexes in
    # memory while an import writes them.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;"
    )
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared state between the server's processes (the public forms' rate limit counts here).
# REDIS_URL selects Django's own Redis backend; short socket timeouts keep a Redis outage from
# holding a request (the forms then accept and log, see practitioners/ratelimit.py).
REDIS_URL = env_str("REDIS_URL")
CACHE_TIMEOUT_SECONDS = env_float("CACHE_TIMEOUT_SECONDS", 0.5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "pl"),
            "OPTIONS": {
                "socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
                "socket_timeout": CACHE_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": env_str("CACHE_BACKEND", "django.core.cache.backends.locmem.LocMemCache"),
            "LOCATION": env_str("CACHE_LOCATION", "practitioner-locator"),
        }
    }

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username + address before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Practitioners sign in with their e-mail address (django-allauth).
    "allauth.account.auth_backends.AuthenticationBackend",
]

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
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Production serves collectstatic's compressed, content-hashed copies through whitenoise (hashed
# names are cached for a year, see practitioners/middleware.py). Development and the tests read
# the source files, which need no collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development and the tests serve the source files as they change, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

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

# Feeds (practitioners/feeds/). Parsing every FHIR response back through the fhirclient models
# is most of a page's time; it runs under DEBUG and the tests, which prove the builders' output
# is exactly what the models write back, so production serves it unchecked.
FHIR_CHECK_RESPONSES = env_bool("FHIR_CHECK_RESPONSES", DEBUG or TESTING)
# The HSDS pages' total_items over every published listing is a count of the whole table (over
# a million certificates for /hsds/services); it is kept this long. Pages with modified_after
# count their few rows through an index, exactly, every time.
HSDS_TOTAL_CACHE_SECONDS = env_int("HSDS_TOTAL_CACHE_SECONDS", 300)

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

# Background tasks (practitioners/tasks.py, docs/tasks.md): "immediate" runs a task at once in
# the process that asked (development, `make run`, the tests: nothing more to run); "database"
# queues it in the database for `manage.py db_worker` (production). The tests always use the
# immediate backend; the ones about the worker switch to the database backend themselves.
TASKS_BACKEND = (
    "immediate"
    if TESTING
    else env_str("TASKS_BACKEND", "immediate" if DEBUG else "database").lower()
)
_TASK_BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "database": "django_tasks_db.DatabaseBackend",
}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(
        f"TASKS_BACKEND must be immediate or database, not {TASKS_BACKEND!r}"
    )
# "geocoding" is a queue of its own so one worker can own the provider's rate limit.
TASKS = {
    "default": {
        "BACKEND": _TASK_BACKENDS[TASKS_BACKEND],
        "QUEUES": ["default", "geocoding"],
    }
}

# E-mail (sent from tasks). Staff are told of each public submission and problem report when
# STAFF_NOTIFY_EMAIL (comma-separated addresses) is set. Development prints mail to the console.
STAFF_NOTIFY_EMAIL = env_list("STAFF_NOTIFY_EMAIL")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# The mail server itself: see "E-mail" below (EMAIL_URL or EMAIL_HOST...).
EMAIL_SUBJECT_PREFIX = "[Practitioner Locator] "

# The admin's CSV import (practitioners/imports.py): the upload is stored in IMPORT_UPLOAD_DIR
# (shared by the web server and the task workers: the same host, or a shared volume) and read by
# the preview and import tasks; uploads and previews expire after IMPORT_EXPIRY_HOURS
# (`manage.py clean_imports` removes them).
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 100)
IMPORT_EXPIRY_HOURS = env_int("IMPORT_EXPIRY_HOURS", 24)
IMPORT_UPLOAD_DIR = Path(env_str("IMPORT_UPLOAD_DIR", str(BASE_DIR / "var" / "imports")))

# Public forms (listing submissions, problem reports): POSTs per IP per hour.
PUBLIC_FORM_RATE_LIMIT = env_int("PUBLIC_FORM_RATE_LIMIT", 10)
PUBLIC_FORM_RATE_WINDOW_SECONDS = env_int("PUBLIC_FORM_RATE_WINDOW_SECONDS", 3600)

# Map tiles for the results map (issue: the search in a real browser).
MAP_TILE_URL = env_str("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env_str(
    "MAP_TILE_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)

# --- Production security (every switch from the environment; see deploy/env.example) -------
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Probes on the host ask gunicorn directly over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# "HTTP_X_FORWARDED_PROTO,https": the header the proxy in front sets on HTTPS requests. Only set it
# when such a proxy exists and overwrites the header, or a client could claim HTTPS.
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be HEADER,value, e.g. HTTP_X_FORWARDED_PROTO,https"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
# How many proxies stand in front of the server: 0 uses the connection's address; N reads the
# Nth address from the right of X-Forwarded-For (what the N proxies appended, never the client).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)

# Content Security Policy (django-csp 4). No inline script or style anywhere: the one inline
# script element, the profile's JSON-LD data block, carries the per-response nonce. The map's
# tile host (from MAP_TILE_URL) is added to img-src per response by the middleware.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
# Features the pages may use: "Use my location" needs geolocation, for this site only.
PERMISSIONS_POLICY = env_str(
    "PERMISSIONS_POLICY",
    "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), interest-cohort=()",
)

# Admin sign-in throttling (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username
# from one address lock that pair for AXES_COOLOFF_MINUTES; `manage.py axes_reset` clears locks.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 30)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "practitioners.ratelimit.axes_client_ip"
AXES_LOCKOUT_TEMPLATE = "axes_locked.html"
AXES_VERBOSE = False
# Staff must add a TOTP code (django-otp) to their password when this is on; see docs/deploy.md
# for enrolment (`manage.py enrol_totp USERNAME`).
ADMIN_REQUIRE_OTP = env_bool("ADMIN_REQUIRE_OTP", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Practitioner Locator")

# --- E-mail (practitioners/notify.py sends everything) ----------------------------------------
# EMAIL_URL (smtp://user:password@host:587?tls=true, smtps://... for implicit TLS, console://,
# locmem://) or the usual EMAIL_HOST/EMAIL_PORT/... ; with neither, DEBUG prints mail on the
# console (make run) and production talks SMTP to localhost. The tests use Django's locmem outbox.
_email_url = env_email("EMAIL_URL")
EMAIL_BACKEND = _email_url.get(
    "EMAIL_BACKEND",
    env_str(
        "EMAIL_BACKEND",
        "django.core.mail.backends.console.EmailBackend"
        if DEBUG and not env_str("EMAIL_HOST")
        else "django.core.mail.backends.smtp.EmailBackend",
    ),
)
EMAIL_HOST = _email_url.get("EMAIL_HOST", env_str("EMAIL_HOST", "localhost"))
EMAIL_PORT = _email_url.get("EMAIL_PORT", env_int("EMAIL_PORT", 25))
EMAIL_HOST_USER = _email_url.get("EMAIL_HOST_USER", env_str("EMAIL_HOST_USER"))
EMAIL_HOST_PASSWORD = _email_url.get("EMAIL_HOST_PASSWORD", env_str("EMAIL_HOST_PASSWORD"))
EMAIL_USE_TLS = _email_url.get("EMAIL_USE_TLS", env_bool("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = _email_url.get("EMAIL_USE_SSL", env_bool("EMAIL_USE_SSL", False))
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
# Seconds an SMTP conversation may take before the send gives up (logged, never a 500).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str(
    "DEFAULT_FROM_EMAIL", "Practitioner Locator <practitioner-locator@localhost>"
)
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- Practitioner accounts (django-allauth; practitioners/accounts.py) -----------------------
# Sign-in by e-mail address, with a password or a one-time code sent there; the address must be
# verified before the account signs in. Allauth's own rate limits stay on (its defaults).
ACCOUNT_ADAPTER = "practitioners.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = env_int("LOGIN_CODE_TIMEOUT_SECONDS", 300)
# Password reset says the same thing whether or not the address has an account.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Practitioner Locator] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG or TESTING else "https"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_HOPS
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/my-listing/"

# --- Claimed listings (curation/claims.py; docs/claiming.md) --------------------------------
# A code e-mailed to a listing's address proves a claim for this long, for this many tries.
CLAIM_CODE_TIMEOUT_MINUTES = env_int("CLAIM_CODE_TIMEOUT_MINUTES", 30)
CLAIM_CODE_MAX_ATTEMPTS = env_int("CLAIM_CODE_MAX_ATTEMPTS", 5)
# Claim POSTs per account and per address in the window before a 429.
CLAIM_RATE_LIMIT = env_int("CLAIM_RATE_LIMIT", 10)
CLAIM_RATE_WINDOW_SECONDS = env_int("CLAIM_RATE_WINDOW_SECONDS", 3600)
# Certificate evidence: private files (never under a public media path), at most this big.
EVIDENCE_ROOT = Path(
    env_str(
        "EVIDENCE_ROOT",
        str(Path(tempfile.gettempdir()) / "practitioner-locator-test-evidence")
        if TESTING
        else str(BASE_DIR / "private" / "evidence"),
    )
)
EVIDENCE_MAX_BYTES = env_int("EVIDENCE_MAX_MB", 5) * 1024 * 1024
# Owners are asked to confirm their listing every this many days (send_confirmation_reminders),
# with a one-click link that works once, for this many days.
OWNER_CONFIRMATION_DAYS = env_int("OWNER_CONFIRMATION_DAYS", 90)
CONFIRMATION_LINK_DAYS = env_int("CONFIRMATION_LINK_DAYS", 14)
# Neither confirmed by its owner nor verified by staff for this long: "may be out of date".
LISTING_STALE_AFTER_DAYS = env_int("LISTING_STALE_AFTER_DAYS", 180)

# /readyz runs these (dotted paths to functions that raise when their dependency is down).
READINESS_CHECKS = [
    "practitioners.health.check_database",
    "practitioners.health.check_cache",
    "practitioners.health.check_task_queue",
]
# Seconds a client is told to wait (Retry-After) while the database is unreachable.
UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("UNAVAILABLE_RETRY_AFTER_SECONDS", 5)

# One JSON line per request and per log record, with the request's id (directory/logging.py).
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "directory.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "directory.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Our own records (the request lines among them) at LOG_LEVEL; libraries stay at WARNING.
        "practitioners": {"level": LOG_LEVEL},
        "django.request": {"level": "ERROR"},
        # Django logs every 4xx/5xx response itself; the request line already says it.
        "django.server": {"level": "ERROR"},
    },
}
