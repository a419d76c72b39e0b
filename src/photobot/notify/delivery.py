"""Sending one message through Apprise without blocking the event loop.

`Apprise.async_notify` runs each plugin's blocking `send()` in Apprise's own thread pool, so a slow SMTP
server or chat API never stalls the loop; a call-level timeout bounds it. Success is Apprise's own verdict
(every URL accepted the message); otherwise the warnings Apprise captured become the error, scrubbed of
addresses, phone numbers and secrets before anyone stores or logs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from photobot.notify.masking import Scrubber

if TYPE_CHECKING:
    import apprise

MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    permanent: bool = False  # retrying cannot help (a malformed URL)


class AppriseSender:
    """Sends to a list of Apprise URLs; one instance per Notifier."""

    def __init__(self, *, timeout_s: float, scrubber: Scrubber) -> None:
        self.timeout_s = timeout_s
        self.scrubber = scrubber
        self._asset: apprise.AppriseAsset | None = None

    @property
    def asset(self) -> apprise.AppriseAsset:
        """Made on the first message: importing Apprise (its plugins) costs ~20 MB of RSS, which a process that
        never notifies (a web process, a worker whose jobs ask for no message) need not pay (docs/benchmarks.md)."""
        if self._asset is None:
            import apprise

            # In memory: Apprise's persistent store would otherwise write caches under the user's home.
            self._asset = apprise.AppriseAsset(storage_mode="memory")
        return self._asset

    async def send(
        self,
        urls: Sequence[str],
        *,
        title: str,
        body: str,
        body_format: str = "text",
        attachments: Sequence[Path] = (),
    ) -> SendResult:
        import apprise

        client = apprise.Apprise(asset=self.asset)
        for url in urls:
            if not client.add(url):
                # The URL itself is never echoed: it may carry a password or token.
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                return SendResult(False, f"invalid Apprise URL ({scheme}://…)", permanent=True)
        attach = apprise.AppriseAttachment([str(p) for p in attachments]) if attachments else None
        fmt = apprise.NotifyFormat.HTML if body_format == "html" else apprise.NotifyFormat.TEXT
        result = await client.async_notify(
            body=body, title=title, body_format=fmt, attach=attach, timeout=self.timeout_s
        )
        if result:
            return SendResult(True)
        messages = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        error = "; ".join(dict.fromkeys(messages)) or f"Apprise reported {result.status.name}"
        return SendResult(False, self.scrubber(error)[:MAX_ERROR_CHARS])
