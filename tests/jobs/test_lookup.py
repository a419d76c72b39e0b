"""`jobs.lookup`: the polled reads (one statement on PostgreSQL, straight on the driver connection) return the
same job and event as the ORM reads them, on both databases: every column, JSON decoded, datetimes aware."""

from __future__ import annotations

from datetime import timedelta

from photobot.db import Database
from photobot.db.models import Event, Job, utcnow
from photobot.jobs import lookup
from photobot.services import accounts


def _job(**owner: int | None) -> Job:
    return Job(
        style_id="pb_a", cost=0, provider="kie", model="m", prompt="p", deadline_at=utcnow() + timedelta(minutes=5),
        result_urls=["https://example.com/a.png"], provider_meta={"nested": {"n": 1}}, **owner,
    )  # fmt: skip


async def test_polled_reads_match_the_orm(database: Database) -> None:
    async with database.session() as session:
        event = await accounts.create_event(session, "Gala", 5)
        user = await accounts.create_user(session, "guest-1", 2)
        event_job, user_job = _job(event_id=event.id), _job(user_id=user.id)
        session.add_all([event_job, user_job])
    async with database.session() as session:
        orm_event_job = await session.get(Job, event_job.id)
        orm_user_job = await session.get(Job, user_job.id)
        orm_event = await session.get(Event, event.id)
    assert orm_event_job is not None and orm_user_job is not None and orm_event is not None

    assert await lookup.job_by_id(database, event_job.id) == orm_event_job
    assert await lookup.job_by_id(database, "0" * 32) is None

    found = await lookup.job_with_event(database, event_job.public_id)
    assert found is not None
    job, with_event = found
    assert job == orm_event_job and with_event == orm_event
    assert job.provider_meta == {"nested": {"n": 1}} and job.deadline_at.tzinfo is not None
    assert await lookup.job_with_event(database, user_job.public_id) == (orm_user_job, None)
    assert await lookup.job_with_event(database, "no-such-page") is None
