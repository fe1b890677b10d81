"""The site as production runs it: gunicorn with gunicorn.conf.py, DEBUG off, a real key, static
files from collectstatic through whitenoise, the security headers, health endpoints and the
request log. These start real server processes; nothing here is a mocked request."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.servers import ROOT, fetch, gunicorn, manage, production_env, random_key

SHELL_SEED = """
from practitioners.models import Location, Practitioner, Profession
p = Practitioner.objects.create(name="Avery Chen", slug="avery-chen", credentials="DC",
    profession=Profession.objects.get(slug="chiropractor"), status="published")
Location.objects.create(practitioner=p, name="Poplar Spine", address_line1="5050 Poplar Ave",
    city="Memphis", state="TN", postal_code="38117", latitude=35.11, longitude=-89.90,
    precision="provided", geocode_status="ok")
"""


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "stylesheet":
            self.urls.append(found["href"] or "")
        if tag == "script":
            if found.get("src"):
                self.urls.append(found["src"] or "")
            else:
                self.inline.append(found.get("type") or "text/javascript")
        if "style" in found:
            self.inline.append(f"style attribute on <{tag}>")


def assets(html: str) -> Assets:
    parser = Assets()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory, collected_static):
    """A production server on a migrated SQLite file with one published listing."""
    root = tmp_path_factory.mktemp("production")
    env = production_env(
        DATABASE_URL=f"sqlite:///{root / 'site.sqlite3'}",
        STATIC_ROOT=str(collected_static),
        _LOG_DIR=str(root),
    )
    run_env = {k: v for k, v in env.items() if k != "_LOG_DIR"}
    result = manage("migrate", "--noinput", "-v0", env=run_env)
    assert result.returncode == 0, result.stderr
    seeded = manage("shell", "-c", SHELL_SEED, env=run_env)
    assert seeded.returncode == 0, seeded.stderr
    with gunicorn(env, workers=2) as server:
        yield server


def test_with_debug_off_every_page_s_css_and_js_is_served_compressed_hashed_and_cached_a_year(
    site,
):
    pages = ["/", "/search/?zip=38117&radius=25", "/practitioners/avery-chen/", "/admin/login/"]
    seen: set[str] = set()
    for path in pages:
        page = site.get(path)
        assert page.status == 200, (path, page.text[:500])
        found = assets(page.text)
        assert found.urls, f"{path} links no CSS or JS"
        for href in found.urls:
            url = urljoin(site.url + path, href)
            seen.add(url)
            # collectstatic's content-hashed name, e.g. site.3f2a9c1b7d4e.css
            assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), url
            asset = fetch(url, headers={"Accept-Encoding": "gzip"})
            assert asset.status == 200, url
            assert asset.headers.get("content-encoding") == "gzip", url
            assert "max-age=31536000" in asset.headers["cache-control"], url
            assert "immutable" in asset.headers["cache-control"], url
    # The results page loads the map (Leaflet and our script) and its stylesheet.
    assert any("leaflet" in url and url.endswith(".js") for url in seen)
    assert any("results-map" in url for url in seen)
    assert any("leaflet" in url and url.endswith(".css") for url in seen)
    assert fetch(site.url + "/static/css/nothing-here.css").status == 404


def test_pages_carry_a_content_security_policy_without_inline_code_and_a_permissions_policy(
    site,
):
    for path in ["/", "/search/?zip=38117", "/practitioners/avery-chen/", "/submit/"]:
        page = site.get(path)
        policy = page.headers["content-security-policy"]
        directives = dict(([*part.split(" ", 1), ""])[:2] for part in policy.split("; ") if part)
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert directives["default-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert "https://tile.openstreetmap.org" in directives["img-src"]
        assert page.headers["permissions-policy"].startswith("geolocation=(self)")
        found = assets(page.text)
        # The only inline script element is the profile's JSON-LD data, under the nonce.
        assert set(found.inline) <= {"application/ld+json"}, (path, found.inline)
    profile = site.get("/practitioners/avery-chen/")
    nonce = re.search(r"'nonce-([^']+)'", profile.headers["content-security-policy"]).group(1)
    assert f'<script type="application/ld+json" nonce="{nonce}">' in profile.text
    # A nonce is never reused across responses.
    again = site.get("/practitioners/avery-chen/").headers["content-security-policy"]
    assert f"'nonce-{nonce}'" not in again


def test_healthz_says_alive_and_readyz_names_each_dependency(site):
    alive = site.get("/healthz")
    assert (alive.status, json.loads(alive.body)) == (200, {"status": "ok"})
    ready = site.get("/readyz")
    assert ready.status == 200
    assert json.loads(ready.body) == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "task_queue": "ok"},
    }


def test_each_request_gets_one_json_log_line_with_its_id_echoed_in_the_response(site):
    given = site.get("/search/?zip=38117", **{"X-Request-ID": "trace-from-nginx-0001"})
    assert given.headers["x-request-id"] == "trace-from-nginx-0001"
    made = site.get("/healthz")
    generated = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    forged = site.get("/healthz", **{"X-Request-ID": '"><script>'})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])

    lines = [json.loads(line) for line in site.log().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "practitioners.requests"]
    mine = [line for line in requests if line.get("request_id") == "trace-from-nginx-0001"]
    assert len(mine) == 1
    assert mine[0]["method"] == "GET" and mine[0]["path"] == "/search/"
    assert mine[0]["status"] == 200 and isinstance(mine[0]["duration_ms"], float)
    assert len([line for line in requests if line["request_id"] == generated]) == 1


def test_testserver_is_not_an_allowed_host_in_production(site):
    assert site.get("/healthz", Host="testserver").status == 400
    assert site.get("/healthz", Host="evil.example").status == 400


def test_sighup_reloads_the_workers_without_dropping_a_request(site):
    import os
    import signal
    import threading
    import time

    statuses: list[int | str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                # Requests wait while the new workers start, which on a busy 2-core machine
                # has taken 15 s: waiting is fine, failing is not.
                statuses.append(site.get("/search/?zip=38117", timeout=90).status)
            except OSError as error:
                statuses.append(repr(error))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(statuses) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = len(statuses)
    os.kill(site.process.pid, signal.SIGHUP)
    # Keep the load on until well after the old workers have gone.
    while len(statuses) < before + 100 and time.monotonic() < deadline + 90:
        time.sleep(0.05)
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(statuses) >= before + 100, "the load did not run through the reload"
    assert set(statuses) == {200}, [s for s in statuses if s != 200][:5]
    assert "Hang up" in site.log() or "Handling signal: hup" in site.log()


def load_settings(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; {code}",
        ],
        cwd=ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
    )


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_check_deploy_passes_with_env_example_and_a_real_secret_key():
    env = production_env(**{**env_example(), "SECRET_KEY": random_key()})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_without_https_settings_and_without_a_shared_cache():
    env = production_env(SECRET_KEY=random_key(), ALLOWED_HOSTS="directory.example.org")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for warning in ("security.W004", "security.W008", "practitioners.W001"):
        assert warning in result.stderr + result.stdout


def test_env_example_names_every_setting_and_the_readme_documents_them():
    readme = (ROOT / "README.md").read_text()
    example = env_example()
    for name in example:
        assert f"`{name}`" in readme, f"{name} is in deploy/env.example but not the README"
    settings_py = (ROOT / "directory" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z_]+)"', settings_py))
    for name in read:
        assert f"`{name}`" in readme, f"settings.py reads {name}; the README does not say so"
    for name in [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_COOKIES",
        "CSRF_TRUSTED_ORIGINS",
        "TRUSTED_PROXY_HOPS",
        "ADMIN_URL",
        "ADMIN_REQUIRE_OTP",
        "STATIC_ROOT",
        "WEB_CONCURRENCY",
    ]:
        assert name in example, f"deploy/env.example lacks {name}"


def test_every_security_setting_comes_from_the_environment():
    result = load_settings(
        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS,"
        " settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD,"
        " settings.SECURE_PROXY_SSL_HEADER, settings.SESSION_COOKIE_SECURE,"
        " settings.CSRF_COOKIE_SECURE, settings.CSRF_TRUSTED_ORIGINS, settings.ALLOWED_HOSTS,"
        " settings.TRUSTED_PROXY_HOPS, settings.ADMIN_URL)",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        SECURE_COOKIES="true",
        CSRF_TRUSTED_ORIGINS="https://directory.example.org",
        ALLOWED_HOSTS="directory.example.org",
        TRUSTED_PROXY_HOPS="1",
        ADMIN_URL="/staff-desk/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "31536000",
        "True",
        "True",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "True",
        "True",
        "['https://directory.example.org']",
        "['directory.example.org']",
        "1",
        "staff-desk",
    ]


def test_a_malformed_proxy_ssl_header_is_a_clear_error():
    result = load_settings("pass", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be HEADER,value" in result.stderr


def test_the_nginx_site_file_passes_nginx_t(tmp_path):
    nginx = Path("/usr/sbin/nginx")
    if not nginx.exists():
        pytest.skip("nginx is not installed (.ci/run installs it)")
    site = (ROOT / "deploy" / "nginx" / "practitioner-locator.conf").read_text()
    # The real certificate paths do not exist here: a throwaway self-signed pair stands in.
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=directory.example.org",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    site = site.replace(
        "/etc/letsencrypt/live/directory.example.org/fullchain.pem", str(tmp_path / "cert.pem")
    ).replace("/etc/letsencrypt/live/directory.example.org/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid; error_log logs/error.log;\n"
        "events {}\n"
        "http { include /etc/nginx/mime.types; access_log logs/access.log;\n"
        f"  include {tmp_path / 'site.conf'}; }}\n"
    )
    result = subprocess.run(
        [str(nginx), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def boom(request):
    raise RuntimeError("something broke in a view")


urlpatterns = [__import__("django.urls").urls.path("boom", boom)]


@pytest.mark.urls("tests.test_production")
def test_an_error_is_logged_with_the_same_request_id_as_its_request_line():
    import io
    import logging

    from django.test import Client

    from directory.logging import JsonFormatter, RequestIdFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        response = Client(raise_request_exception=False).get("/boom")
    finally:
        root.removeHandler(handler)
    assert response.status_code == 500
    rid = response["X-Request-ID"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    error = next(line for line in lines if line["logger"] == "django.request")
    request_line = next(line for line in lines if line["logger"] == "practitioners.requests")
    assert error["level"] == "ERROR" and error["request_id"] == rid
    assert "RuntimeError: something broke in a view" in error["exception"]
    assert request_line["request_id"] == rid and request_line["status"] == 500


def test_with_the_https_redirect_on_pages_redirect_but_the_probes_answer_over_http(settings):
    from django.test import Client

    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    page = client.get("/search/?zip=38117")
    assert page.status_code == 301
    assert page["Location"] == "https://testserver/search/?zip=38117"
    assert client.get("/healthz").status_code == 200
    secure = client.get("/healthz", secure=True)
    assert secure.status_code == 200
