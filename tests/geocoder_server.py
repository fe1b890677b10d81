"""A stand-in for Nominatim, Photon and Pelias on 127.0.0.1, so geopy's real clients can be tested
without the internet.

It answers each request with the next scripted :class:`Reply` (then with ``default``, a reply or a
function of the request), in the JSON format of the API the path belongs to: ``/search``
(Nominatim), ``/api`` (Photon) or ``/v1/search`` (Pelias). It records every request it sees, with
the time it arrived, so tests can count requests and measure the gaps between them.

    with GeocoderServer() as server:
        server.script(Reply.found(35.11, -89.90), Reply.error(429))
        ... GEOCODER_DOMAIN = server.domain, GEOCODER_SCHEME = "http" ...
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    # (latitude, longitude, name) of each result; empty means "no match"
    results: tuple[tuple[float, float, str], ...] = ()
    delay: float = 0.0
    raw_body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def found(cls, latitude: float, longitude: float, name: str = "Somewhere, USA") -> Reply:
        return cls(results=((latitude, longitude, name),))

    @classmethod
    def empty(cls) -> Reply:
        return cls()

    @classmethod
    def error(cls, status: int, retry_after: int | None = None) -> Reply:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(status=status, raw_body=json.dumps({"error": "scripted"}), headers=headers)

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        then = then or cls.found(35.11, -89.90)
        return cls(then.status, then.results, seconds, then.raw_body, then.headers)

    @classmethod
    def nonsense(cls, body: str = "<html>maintenance</html>") -> Reply:
        return cls(raw_body=body)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    params: dict[str, str]
    at: float  # time.monotonic() on arrival
    user_agent: str


def _nominatim(reply: Reply) -> object:
    return [
        {
            "place_id": n,
            "lat": f"{lat:.7f}",
            "lon": f"{lon:.7f}",
            "display_name": name,
            "class": "place",
            "type": "house",
            "importance": 0.5,
        }
        for n, (lat, lon, name) in enumerate(reply.results, start=1)
    ]


def _geojson(reply: Reply) -> object:
    """Photon's and Pelias's shape (Pelias adds a "label"; both have a "name")."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "name": name,
                    "label": name,
                    "country": "United States",
                    "countrycode": "US",
                },
            }
            for lat, lon, name in reply.results
        ],
    }


class GeocoderServer:
    def __init__(self, default: Reply | Callable[[SeenRequest], Reply] | None = None) -> None:
        self.default = default or Reply.empty()
        self.requests: list[SeenRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- control ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def gaps(self) -> list[float]:
        """Seconds between the arrivals of consecutive requests."""
        times = [r.at for r in self.requests]
        return [b - a for a, b in itertools.pairwise(times)]

    def start(self) -> GeocoderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> GeocoderServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @staticmethod
    def closed_port() -> int:
        """A loopback port nothing listens on (connections are refused)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    # -- serving ------------------------------------------------------------------------------

    def _next_reply(self, request: SeenRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return self.default(request) if callable(self.default) else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                seen = SeenRequest(
                    path=url.path,
                    params=dict(parse_qsl(url.query)),
                    at=time.monotonic(),
                    user_agent=self.headers.get("User-Agent", ""),
                )
                reply = server._next_reply(seen)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                if reply.raw_body is not None:
                    body = reply.raw_body
                elif url.path == "/search":
                    body = json.dumps(_nominatim(reply))
                elif url.path in ("/api", "/v1/search"):
                    body = json.dumps(_geojson(reply))
                else:
                    reply, body = Reply(status=404), json.dumps({"error": "unknown path"})
                data = body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test): nothing to tell it

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler
