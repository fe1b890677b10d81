"""Real servers for the production tests: gunicorn (with the repository's gunicorn.conf.py) run
as a subprocess with a production environment, and a TCP relay that can cut a connection to
PostgreSQL and bring it back, so an outage is a real one."""

from __future__ import annotations

import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
SECRET_KEY = "prod-test-" + "k3Y9zQ7xW2vB8nM4pL6tR1sD5fG0hJ" * 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production process: no DEBUG, no TESTING, a real key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "TESTING", "DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL"}
        and not k.startswith(("PYTEST", "DJANGO_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "directory.settings",
            "TESTING": "false",
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_COOKIES": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def fetch(
    url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 15
) -> Response:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(
                reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
            )
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env.get("_LOG_DIR", "/tmp")) / f"gunicorn-{self.port}.log"
        env = {k: v for k, v in env.items() if k != "_LOG_DIR"}
        env.update(GUNICORN_BIND=f"127.0.0.1:{self.port}", WEB_CONCURRENCY=str(workers))
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # Two workers importing Django take ~3 s on a quiet machine; CI has seen over 30 s at a
        # load average of 10 on 2 cores, so the start is given a minute.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                if fetch(self.url + "/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def log(self) -> str:
        # stop() closes the file; the log is still worth reading after it.
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 15, **headers: str) -> Response:
        return fetch(self.url + path, headers=headers, timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2) -> Iterator[Gunicorn]:
    server = Gunicorn(env, workers)
    try:
        yield server
    finally:
        server.stop()


class Relay:
    """Forwards a local port to PostgreSQL. ``down()`` closes the port and cuts every open
    connection (what the server sees when the database host goes away); ``up()`` reopens it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            listener.close()
        for a, b in pairs:
            for sock in (a, b):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with suppress(OSError):
                    sock.close()


def random_key() -> str:
    return secrets.token_urlsafe(50)
