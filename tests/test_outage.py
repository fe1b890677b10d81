"""PostgreSQL going away under a running production server, for real: the server reaches the test
database through a relay (tests/servers.py) that refuses connections and cuts the open ones, the
way a stopped database host does. While it is down every page and the API answer 503 with
Retry-After and a plain body (never a 500, never the driver's message); when it is back the site
answers again by itself."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from tests.servers import Relay, gunicorn, manage, production_env

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/search/?zip=38117&radius=25",
    "/practitioners/someone/",
    "/submit/",
]
API = "/api/practitioners/?zip=38117"


@pytest.fixture
def server_on_relay(tmp_path, collected_static):
    if connection.vendor != "postgresql":
        pytest.skip("the outage is a PostgreSQL one: run with DATABASE_URL=postgres://...")
    settings_dict = connection.settings_dict
    relay = Relay((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)))
    user = settings_dict["USER"] or "postgres"
    env = production_env(
        DATABASE_URL=f"postgres://{user}@127.0.0.1:{relay.port}/{settings_dict['NAME']}",
        STATIC_ROOT=str(collected_static),
        DB_CONNECT_TIMEOUT="2",
        _LOG_DIR=str(tmp_path),
    )
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = settings_dict["PASSWORD"]
    try:
        with gunicorn(env, workers=2) as server:
            yield server, relay
    finally:
        relay.down()


def test_while_postgresql_is_unreachable_every_page_answers_503_and_then_recovers(
    server_on_relay,
):
    server, relay = server_on_relay
    assert server.get("/search/?zip=38117").status == 200
    assert server.get(API).status == 200

    relay.down()
    for path in PAGES:
        page = server.get(path)
        assert page.status == 503, (path, page.status, page.text[:300])
        assert page.headers["retry-after"] == "5"
        assert page.headers["content-type"].startswith("text/html")
        assert "Briefly unavailable" in page.text
        assert "127.0.0.1" not in page.text and str(relay.port) not in page.text
    api = server.get(API)
    assert api.status == 503 and api.headers["retry-after"] == "5"
    assert json.loads(api.body) == {
        "detail": "The directory is briefly unavailable. Please try again in a few seconds."
    }
    # Alive, but not ready; the failing dependency is named, nothing more.
    assert server.get("/healthz").status == 200
    ready = server.get("/readyz")
    assert ready.status == 503
    # The task queue is a table in that database: it is down with it.
    assert json.loads(ready.body) == {
        "status": "unavailable",
        "failed": ["database", "task_queue"],
        "checks": {"database": "failed", "cache": "ok", "task_queue": "failed"},
    }
    for secret in ("127.0.0.1", str(relay.port), "postgres", connection.settings_dict["NAME"]):
        assert secret not in ready.text
    # The log has the details, under each request's id.
    assert "database unavailable" in server.log()

    relay.up()
    deadline = time.monotonic() + 5
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(server.get("/search/?zip=38117").status)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}
    assert server.get(API).status == 200
    assert server.get("/readyz").status == 200
    assert "Internal Server Error" not in server.log()


def test_a_closed_database_port_from_the_start_is_a_503_not_a_500(tmp_path, collected_static):
    from tests.servers import free_port

    env = production_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
        STATIC_ROOT=str(collected_static),
        _LOG_DIR=str(tmp_path),
    )
    assert manage("check", env={k: v for k, v in env.items() if k != "_LOG_DIR"}).returncode == 0
    with gunicorn(env, workers=1) as server:
        for path in [*PAGES, API]:
            assert server.get(path).status == 503, path
        assert server.get("/healthz").status == 200
        # The task queue is a table in that database: it is down with it.
        assert json.loads(server.get("/readyz").body)["failed"] == ["database", "task_queue"]
