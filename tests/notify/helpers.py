"""Test doubles and factories for the notification tests (storage, HTTP capture, rows)."""

from __future__ import annotations

import io
import json
import shutil
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from photobot.db import Database
from photobot.db.models import Event, Job, JobState, Style, utcnow
from photobot.notify import plan_notifications
from photobot.settings import Settings


def png_bytes(color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


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


async def make_event(db: Database, **values: Any) -> Event:
    values.setdefault("name", "gala")
    values.setdefault("title", "Gala Night")
    event = Event(**values)
    async with db.session() as session:
        session.add(event)
        await session.flush()
    return event


async def make_style(db: Database, style_id: str = "pb_a", name: str = "Pop Art") -> None:
    async with db.session() as session:
        if await session.get(Style, style_id) is None:
            session.add(Style(id=style_id, name=name, prompt="make it pop"))


async def make_job(db: Database, event: Event | None = None, **values: Any) -> Job:
    values.setdefault("style_id", "pb_a")
    values.setdefault("provider", "kie")
    values.setdefault("model", "nano-banana-pro")
    values.setdefault("prompt", "make it pop")
    values.setdefault("input_key", "inputs/x.png")
    values.setdefault("deadline_at", utcnow() + timedelta(minutes=5))
    values.setdefault("state", JobState.finishing)
    if event is not None:
        values["event_id"] = event.id
    job = Job(**values)
    async with db.session() as session:
        session.add(job)
    return job


async def finish_job(db: Database, job_id: str, settings: Settings, *, kind: str = "ready") -> list[Any]:
    """What the dispatcher does: mark the job final and plan notifications in the same transaction."""
    async with db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        if kind == "ready":
            job.state = JobState.completed
            job.result_key = job.result_key or f"results/{job.id}.png"
            job.result_content_type = "image/png"
            job.completed_at = job.completed_at or utcnow()
        else:
            job.state = JobState.failed
            job.error_code = "generation_failed"
        session.add(job)
        event = await session.get(Event, job.event_id) if job.event_id else None
        return await plan_notifications(session, job, event, settings, kind=kind)  # type: ignore[arg-type]
