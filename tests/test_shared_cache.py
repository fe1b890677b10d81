"""Shared state in Redis (REDIS_URL): the public forms' rate limit counts there across every
server process; the visitor's address comes from X-Forwarded-For only as far as
TRUSTED_PROXY_HOPS says; with Redis down the forms still take submissions (and log a warning)
and /readyz names the cache. Against the real Redis on 127.0.0.1:6379 (.ci/run starts one)."""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.parse
import uuid

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from practitioners.models import ListingReport, Practitioner
from tests.factories import practitioner_at
from tests.servers import fetch, free_port, gunicorn, manage, production_env
from tests.test_public_forms import submission_data

pytestmark = pytest.mark.django_db


def redis_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not redis_is_up(), reason="no Redis on 127.0.0.1:6379 (.ci/run starts one)"
)


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


@needs_redis
def test_three_worker_processes_share_one_count_in_redis(tmp_path, collected_static):
    """The issue's finding: with the count in each process, 27-30 of 60 POSTs passed a limit of
    10 on 3 workers. In Redis exactly 10 pass, whichever worker answers."""
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'site.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:6379/15",
        CACHE_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
        PUBLIC_FORM_RATE_LIMIT="10",
        STATIC_ROOT=str(collected_static),
        _LOG_DIR=str(tmp_path),
    )
    result = manage(
        "migrate", "--noinput", "-v0", env={k: v for k, v in env.items() if k != "_LOG_DIR"}
    )
    assert result.returncode == 0, result.stderr
    with gunicorn(env, workers=3) as server:
        page = server.get("/submit/")
        cookie = page.headers["set-cookie"].split(";")[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        statuses = []
        for _ in range(30):
            # An empty form: a 400 with the errors, which counts like any other POST.
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": token}).encode()
            reply = fetch(server.url + "/submit/", data=body, headers={"Cookie": cookie})
            statuses.append(reply.status)
        ready = json.loads(server.get("/readyz").body)
    assert statuses.count(400) == 10
    assert statuses.count(429) == 20
    assert ready["checks"]["cache"] == "ok"


@needs_redis
def test_the_rate_limit_counts_in_redis(client):
    with override_settings(
        CACHES=redis_cache("redis://127.0.0.1:6379/15"), PUBLIC_FORM_RATE_LIMIT=2
    ):
        # (A fresh key prefix per test: never FLUSHDB a Redis others may share.)
        assert client.post("/submit/", submission_data()).status_code == 302
        assert client.post("/submit/", submission_data()).status_code == 302
        assert client.post("/submit/", submission_data()).status_code == 429
        assert cache.get("ratelimit:public-forms:127.0.0.1") == 3
        cache.delete("ratelimit:public-forms:127.0.0.1")


def test_with_redis_down_the_forms_still_take_submissions_and_log_a_warning(client, caplog):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    listing = practitioner_at(35.11, -89.90)
    with override_settings(CACHES=redis_cache(closed)), caplog.at_level(logging.WARNING):
        submitted = client.post("/submit/", submission_data(name="Down Time"))
        reported = client.post(f"/practitioners/{listing.slug}/report/", {"kind": "closed"})
        ready = client.get("/readyz")
    assert submitted.status_code == 302 and submitted["Location"] == "/submit/thanks/"
    assert Practitioner.objects.filter(name="Down Time", status="pending").exists()
    assert reported.status_code == 302 and ListingReport.objects.count() == 1
    assert "the cache is unavailable" in caplog.text
    assert ready.status_code == 503
    body = ready.json()
    assert body["failed"] == ["cache"] and body["checks"]["database"] == "ok"
    assert "127.0.0.1" not in ready.content.decode()


@override_settings(PUBLIC_FORM_RATE_LIMIT=1)
def test_without_trusted_proxies_a_forged_forwarded_for_does_not_buy_more_posts():
    for forged in ("1.1.1.1", "2.2.2.2"):
        Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=forged).post(
            "/submit/", submission_data()
        )
    again = Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="3.3.3.3")
    assert again.post("/submit/", submission_data()).status_code == 429


@override_settings(PUBLIC_FORM_RATE_LIMIT=1, TRUSTED_PROXY_HOPS=1)
def test_behind_one_proxy_each_visitor_has_their_own_count_and_cannot_forge_another():
    def via_proxy(forwarded_for: str) -> Client:
        return Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)

    assert via_proxy("203.0.113.1").post("/submit/", submission_data()).status_code == 302
    # A second visitor behind the same proxy is not blocked by the first.
    assert via_proxy("203.0.113.2").post("/submit/", submission_data()).status_code == 302
    # The first visitor writing a fake address first: the proxy appended the real one.
    forged = via_proxy("9.9.9.9, 203.0.113.1")
    assert forged.post("/submit/", submission_data()).status_code == 429


@override_settings(PUBLIC_FORM_RATE_LIMIT=1, TRUSTED_PROXY_HOPS=2)
def test_behind_two_proxies_the_address_the_outer_proxy_saw_counts():
    # client -> CDN (appends client) -> nginx (appends CDN) -> gunicorn
    first = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.3, 10.1.1.1")
    assert first.post("/submit/", submission_data()).status_code == 302
    same = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="8.8.8.8, 203.0.113.3, 10.1.1.2")
    assert same.post("/submit/", submission_data()).status_code == 429


def test_in_production_a_per_process_cache_draws_a_warning(settings):
    from practitioners.checks import shared_cache_check

    settings.DEBUG = False
    settings.TESTING = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [w.id for w in shared_cache_check()] == ["practitioners.W001"]
    settings.CACHES = redis_cache("redis://127.0.0.1:6379/15")
    assert shared_cache_check() == []
