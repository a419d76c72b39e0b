"""`apply_callback` decides every class of callback the same way on both backends.

On PostgreSQL a success is one statement (`_SUCCESS_SQL`); on SQLite, and for failures, the session path runs.
The HTTP tests (tests/webhooks) cover each class end to end; this one pins the rules of the one-statement form
row by row — what is recorded, what moves, what history is written — including the parts no kie callback reaches
(fal's `needs_fetch`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from photobot.bus import Bus
from photobot.db import Database
from photobot.db.models import Job, JobState, JobTransition, WebhookEvent
from photobot.jobs.callbacks import ForeignTask, apply_callback
from photobot.providers.base import CallbackEvent
from photobot.settings import Settings
from tests.support.seed import make_event, make_job, make_style


def success(task: str, *, needs_fetch: bool = False) -> CallbackEvent:
    urls = () if needs_fetch else (f"https://results.example.com/{task}.png",)
    return CallbackEvent(task, "success", urls, needs_fetch=needs_fetch, raw={"taskId": task, "state": "success"})


async def rows(db: Database, job_id: str) -> tuple[Job, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        events = (await session.execute(sa.select(WebhookEvent.task_id, WebhookEvent.outcome).where(
            WebhookEvent.job_id == job_id))).all()  # fmt: skip
        history = (await session.execute(sa.select(JobTransition.from_state, JobTransition.to_state).where(
            JobTransition.job_id == job_id))).all()  # fmt: skip
    return job, [tuple(e) for e in events], [tuple(h) for h in history]


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """Not audited: the jobs are inserted without their credit reservation (credits are not the subject here)."""
    db = Database(db_url)
    yield db
    await db.close()


async def test_every_class_of_callback(database: Database, make_settings: Callable[..., Settings]) -> None:
    settings, bus = make_settings(), Bus()
    await make_style(database)
    event = await make_event(database)

    async def apply(job_id: str, callback: CallbackEvent, provider: str = "kie") -> str:
        return await apply_callback(database, bus, settings, provider, job_id, callback)

    waiting = await make_job(database, event, state=JobState.waiting, provider_task_id="t-1", provider_meta={"a": 1})
    assert await apply(waiting.id, success("t-1")) == "accepted"
    job, events, history = await rows(database, waiting.id)
    assert job.state == "finishing" and job.attempts == 0 and job.callback_at is not None
    assert job.result_urls == ["https://results.example.com/t-1.png"] and job.provider_meta == {"a": 1}
    assert events == [("t-1", "success")] and history == [("waiting", "finishing")]
    assert bus.wake_event.is_set()  # the finish step is due: a dispatcher is woken

    assert await apply(waiting.id, success("t-1")) == "duplicate"
    assert await rows(database, waiting.id) == (job, events, history)

    # a success before createTask's answer was recorded: the task id is taken from the callback
    submitting = await make_job(database, event, state=JobState.submitting)
    assert await apply(submitting.id, success("t-2", needs_fetch=True)) == "accepted"
    job, events, history = await rows(database, submitting.id)
    assert job.provider_task_id == "t-2" and job.provider_meta == {"needs_fetch": True} and job.result_urls == []
    assert history == [("submitting", "finishing")]

    # the task of another of our jobs, or another provider's job: refused, nothing recorded
    other = await make_job(database, event, state=JobState.waiting, provider_task_id="t-3")
    before = await rows(database, other.id)
    with pytest.raises(ForeignTask):
        await apply(other.id, success("t-1"))
    with pytest.raises(ForeignTask):
        await apply(other.id, success("t-3"), provider="fal")
    assert await rows(database, other.id) == before

    # a task this job does not track, and a job that does not exist: 200 upstream, nothing changes
    assert await apply(other.id, success("t-old")) == "unknown"
    assert await apply("0" * 32, success("t-none")) == "unknown"
    assert await rows(database, other.id) == before

    # a final job records the callback (late) and stays as it is; a job already finishing ignores a new outcome
    done = await make_job(database, event, state=JobState.completed, provider_task_id="t-4")
    assert await apply(done.id, success("t-4")) == "late"
    job, events, history = await rows(database, done.id)
    assert job.state == "completed" and events == [("t-4", "success")] and history == []
    finishing = await make_job(database, event, state=JobState.finishing, provider_task_id="t-5")
    assert await apply(finishing.id, success("t-5")) == "ignored"
    assert (await rows(database, finishing.id))[0].state == "finishing"
