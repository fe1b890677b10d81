"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for the test that
sends mail the way production does: over a socket, through Django's SMTP backend."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from tests.servers import free_port


class KeepMessages:
    def __init__(self) -> None:
        self.received: list[tuple[Envelope, EmailMessage]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.received.append((envelope, message))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, handler: KeepMessages, port: int) -> None:
        self.handler = handler
        self.port = port

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        with self.handler.arrived:
            while len(self.handler.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.handler.arrived.wait(left)
            return list(self.handler.received)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    handler = KeepMessages()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(handler, port)
    finally:
        controller.stop()
