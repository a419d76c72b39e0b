"""Test doubles for the notification tests: storage over a plain directory, an HTTP server that records requests.

The rows these tests need come from `tests/support/seed.py`."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class DirStorage:
    """The two storage calls the notifier uses, over a plain directory (storage itself is not ours)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fail_downloads = False

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    async def download_to(self, key: str, path: Path) -> None:
        if self.fail_downloads:
            raise OSError("storage unavailable")
        shutil.copyfile(self.root / key, path)

    async def url(self, key: str, expires_s: int) -> str:
        return f"http://media.test/{key}?expires={expires_s}&sig=abc"


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpCapture:
    """A loopback HTTP server that records every request and answers with `status`."""

    status: int = 200
    response: bytes = b'{"ok": true}'
    requests: list[Captured] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> HttpCapture:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                capture.requests.append(Captured("POST", self.path, dict(self.headers.items()), body))
                self.send_response(capture.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(capture.response)))
                self.end_headers()
                self.wfile.write(capture.response)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
