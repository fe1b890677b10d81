"""Which database a query goes to when read replicas are configured (DATABASE_REPLICA_URLS).

Reads of the public, anonymous pages (the search, profiles, the API and, later, the FHIR and
feed endpoints) go to a streaming replica; everything else goes to the primary: every write, the
admin, the imports and commands, the public forms, and any request from someone with a session
(signed in staff or a listing's owner), so a person always reads what they just wrote. Reads
inside a transaction on the primary stay on the primary for the same reason.

Replication itself is PostgreSQL's (docs/deploy.md); nothing here copies data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponseBase

# Named URL patterns whose GET/HEAD requests may read from a replica.
REPLICA_VIEWS = frozenset(
    {
        "practitioners:home",
        "practitioners:search",
        "practitioners:profile",
        "api-practitioners",
        "api-schema",
        "fhir-metadata",
        "fhir-search",
        "fhir-read",
        "hsds-index",
        "hsds-organizations",
        "hsds-organization",
        "hsds-services",
        "hsds-service",
        "hsds-locations",
        "hsds-location",
    }
)

_read_from_replica: ContextVar[bool] = ContextVar("read_from_replica", default=False)


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != DEFAULT_DB_ALIAS]


def request_may_use_replica(request: HttpRequest) -> bool:
    match = request.resolver_match
    return (
        request.method in {"GET", "HEAD"}
        and match is not None
        and match.view_name in REPLICA_VIEWS
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


def primary_in_transaction() -> bool:
    """A transaction open on the primary: its own writes are only visible there."""
    return connections[DEFAULT_DB_ALIAS].in_atomic_block


class ReplicaReadsMiddleware:
    """Marks the requests whose reads may go to a replica (decided once the URL is resolved)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _read_from_replica.set(False)
        try:
            return self.get_response(request)
        finally:
            _read_from_replica.reset(token)

    def process_view(self, request: HttpRequest, view, args, kwargs) -> None:
        if replica_aliases() and request_may_use_replica(request):
            _read_from_replica.set(True)


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        replicas = replica_aliases()
        if replicas and _read_from_replica.get() and not primary_in_transaction():
            return random.choice(replicas)
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Every alias holds the same data (replicas are copies of the primary).
        return True

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
