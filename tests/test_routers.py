"""Which database each request reads from when read replicas are configured
(DATABASE_REPLICA_URLS): the public pages and the API read from a replica; the admin, the forms,
signed-in people, writes and transactions use the primary, so a person reads their own writes."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test.utils import CaptureQueriesContext

from practitioners import routers
from practitioners.models import Practitioner
from tests.factories import practitioner_near_zip
from tests.test_public_forms import submission_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def decisions(monkeypatch):
    """Pretend a replica "replica1" exists and record where each read would go, while the
    queries themselves still run on the test database. (The test's own transaction, which
    would keep every read on the primary, is left out of the decision; see the test below.)"""
    seen: list[str] = []
    monkeypatch.setattr(routers, "replica_aliases", lambda: ["replica1"])
    monkeypatch.setattr(routers, "primary_in_transaction", lambda: False)
    decide = routers.PrimaryReplicaRouter.db_for_read

    def record(self, model, **hints):
        # (Without the hints: an instance read here comes from "default" and would pull its
        # related reads after it.)
        alias = decide(self, model)
        seen.append(alias)
        return "default"

    monkeypatch.setattr(routers.PrimaryReplicaRouter, "db_for_read", record)
    return seen


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/search/?zip=38117&radius=25",
        "/api/practitioners/?zip=38117",
        "/practitioners/{slug}/",
    ],
)
def test_public_pages_and_the_api_read_from_the_replica(client, decisions, path):
    listing = practitioner_near_zip("38117", 1)
    decisions.clear()
    assert client.get(path.format(slug=listing.slug)).status_code == 200
    assert decisions and set(decisions) == {"replica1"}


def test_the_public_forms_read_and_write_on_the_primary(client, decisions):
    listing = practitioner_near_zip("38117", 1)
    assert client.get("/submit/").status_code == 200
    assert client.post("/submit/", submission_data()).status_code == 302
    assert client.get(f"/practitioners/{listing.slug}/report/").status_code == 200
    assert decisions and set(decisions) == {"default"}


def test_the_admin_reads_from_the_primary(client, decisions):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.org", "x"))
    decisions.clear()
    assert client.get("/admin/practitioners/practitioner/").status_code == 200
    assert decisions and set(decisions) == {"default"}


def test_someone_with_a_session_reads_their_own_writes_from_the_primary(client, decisions):
    listing = practitioner_near_zip("38117", 1)
    client.force_login(get_user_model().objects.create_user("owner", password="x"))
    decisions.clear()
    assert client.get(f"/practitioners/{listing.slug}/").status_code == 200
    assert client.get("/search/?zip=38117").status_code == 200
    assert decisions and set(decisions) == {"default"}


def test_commands_and_code_outside_a_request_read_from_the_primary(decisions):
    list(Practitioner.objects.all())
    assert decisions == ["default"]


def test_writes_and_migrations_only_ever_go_to_the_primary():
    router = routers.PrimaryReplicaRouter()
    assert router.db_for_write(Practitioner) == "default"
    assert router.allow_migrate("default", "practitioners") is True
    assert router.allow_migrate("replica1", "practitioners") is False


def test_inside_a_transaction_reads_stay_on_the_primary(monkeypatch):
    monkeypatch.setattr(routers, "replica_aliases", lambda: ["replica1"])
    router = routers.PrimaryReplicaRouter()
    token = routers._read_from_replica.set(True)
    try:
        # pytest-django's test transaction is itself an atomic block on the primary.
        assert connections["default"].in_atomic_block
        assert router.db_for_read(Practitioner) == "default"
    finally:
        routers._read_from_replica.reset(token)


@pytest.mark.skipif(
    not settings.DATABASE_REPLICA_URLS,
    reason="no replica configured (DATABASE_REPLICA_URLS; .ci/run sets one as a test mirror)",
)
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_with_a_replica_configured_the_search_s_queries_run_on_it(client):
    listing = practitioner_near_zip("38117", 1, name="Read Replica")
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica1"]) as replica,
    ):
        page = client.get("/search/?zip=38117&radius=25")
    assert page.status_code == 200 and listing.name in page.content.decode()
    assert len(replica) >= 2
    assert len(primary) == 0
