"""A named lock shared by every process that uses the same database, so a scheduled job started
twice at once (a timer firing while the last run is still going, or an operator running it by
hand) does its work once: the second run sees the lock held and stops without doing anything.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), held by the connection, so
it is released even if the process dies. SQLite lives on one host, so an ``flock`` on a file next
to the database does the same job (released by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connections


def _key(name: str) -> int:
    # A stable signed 64-bit number per name (PostgreSQL's advisory lock key is a bigint).
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def _lock_file(database_name: str, name: str) -> Path:
    path = Path(str(database_name))
    if (
        path.parent.is_dir()
        and ":memory:" not in str(database_name)
        and "mode=memory" not in str(database_name)
    ):
        return path.with_name(f"{path.name}.{name}.lock")
    # The tests' in-memory database: any process sharing it is this one, a temp file will do.
    digest = hashlib.blake2b(str(database_name).encode(), digest_size=6).hexdigest()
    return Path(tempfile.gettempdir()) / f"practitioner-locator-{digest}.{name}.lock"


@contextmanager
def try_exclusive(name: str, *, using: str = "default") -> Iterator[bool]:
    """Take the lock ``name`` if nobody holds it; yields True when taken (released on exit),
    False when another process (or another connection) holds it. Never waits."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        key = _key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    path = _lock_file(connection.settings_dict["NAME"], name)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
