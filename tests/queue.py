"""Helpers for tests about the task queue: switch to the database backend (what production runs)
and run what is queued the way `manage.py db_worker` does, inside the test's transaction."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from django.test import override_settings

DATABASE_TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "geocoding"],
    }
}


@contextmanager
def database_backend():
    """Tasks are queued in the database, as in production, instead of run at once."""
    with override_settings(TASKS=DATABASE_TASKS):
        yield


def queued():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status="READY")


def run_ready_tasks() -> int:
    """Run every task that is due, with db_worker's own code; returns how many ran."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    ran = 0
    while (result := DBTaskResult.objects.ready().order_by("enqueued_at").first()) is not None:
        result.claim(worker.worker_id)
        worker.run_task(result)
        ran += 1
    return ran


def time_passes(seconds: float) -> None:
    """Bring every deferred task ``seconds`` closer to its run_after (instead of waiting)."""
    for result in queued().exclude(run_after__isnull=True):
        if result.run_after.year < 9999:  # django-tasks-db's "no run_after" is the max date
            result.run_after -= dt.timedelta(seconds=seconds)
            result.save(update_fields=["run_after"])
