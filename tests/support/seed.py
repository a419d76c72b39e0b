"""Putting records in the database for a test: the standard seed of a served stack, and single rows.

`seed(db)` is what every served stack starts from: the default style catalogue, an event with credits, an app
user, and an event (kiosk), an app and an admin token. The row factories (`make_event`, `make_style`,
`make_job`) insert rows directly, with no credit reservation, for tests whose subject is not the credits;
`finish_job` makes a job final and plans its notifications in one transaction, as the dispatcher does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from photobot.db import Database
from photobot.db.models import Event, Job, JobState, Style, utcnow
from photobot.notify import plan_notifications
from photobot.services import access, accounts, styles
from photobot.settings import Settings


async def seed(db: Database, *, credits: int = 10, user_credits: int = 5) -> dict[str, Any]:
    async with db.session() as session:
        await styles.load_default_catalogue(session)
        event = await accounts.create_event(session, "Wedding", credits)
        user = await accounts.create_user(session, "app-user-1", user_credits)
        _, kiosk = await access.create_token(session, "event", event_id=event.id)
        _, app = await access.create_token(session, "app")
        _, admin = await access.create_token(session, "admin")
    return {"event_id": event.id, "user_id": user.id, "kiosk": kiosk, "app": app, "admin": admin}


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
