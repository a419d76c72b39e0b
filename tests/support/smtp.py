"""A real SMTP server (aiosmtpd) that collects the messages it receives; the `smtp_server` fixture runs one."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any


@dataclass
class SMTPServer:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mailto://{self.host}:{self.port}?from=booth@photobot.test&mode=insecure"


class Collector:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.envelopes.append(envelope)
        self.server.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"
