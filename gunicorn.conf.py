"""gunicorn's settings for production (docs/deploy.md). Every value can come from the environment.

- Workers: WEB_CONCURRENCY sync workers (default 2 per core + 1). A search is a few short
  database queries and some Python, so processes, not threads, use the cores.
- SIGTERM: graceful shutdown; workers finish the request in hand (up to graceful_timeout).
- SIGHUP: reload; new workers load the new code and configuration and start accepting before the
  old ones finish their requests and exit, on the same listening socket, so nothing is dropped.
  That is why the app is not preloaded (a preloaded app would not see new code on SIGHUP).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# Connections waiting for a worker; nginx in front queues the rest.
backlog = int(os.environ.get("GUNICORN_BACKLOG", 2048))
# A request taking longer than this is stuck: its worker is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 2))
# Recycling workers after N requests is off: a new worker costs about a second and a half of CPU
# (Django, the URLconf, the ZIP table), and workers serving an even load reach N together, so on 2
# cores the recycling itself stalled every request for over a second (bench/load.py, /healthz
# p99 1.6 s). Turn it on (with a jitter of half of it) only if a worker's memory is seen to grow.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 0))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 2))
preload_app = False
# The app logs one JSON line per request itself (practitioners.middleware); gunicorn's own
# access log would be a second, unstructured one.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Only the proxy on this host may say a request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "practitioner-locator"
wsgi_app = "directory.wsgi:application"


def post_worker_init(worker) -> None:
    from practitioners.health import warm_up

    warm_up()
