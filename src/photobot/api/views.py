"""How a job looks to clients: the JSON view, with signed links, and its ETag."""

from __future__ import annotations

import hashlib

from photobot.api.schemas import JobError, JobView
from photobot.db.models import Job, JobState
from photobot.links import job_links
from photobot.runtime import Runtime

RETRY_AFTER_S = 2


async def result_url(runtime: Runtime, job: Job) -> str | None:
    if job.state != JobState.completed or not job.result_key or job.purged_at is not None:
        return None
    ext = job.result_key.rsplit(".", 1)[-1]
    return await runtime.storage.url(
        job.result_key, runtime.settings.signed_url_ttl_s, filename=f"photobot-{job.public_id[:8]}.{ext}"
    )


async def job_view(runtime: Runtime, job: Job) -> JobView:
    error = None
    if job.state == JobState.failed:
        error = JobError(code=job.error_code or "failed", message=job.error_message or "The photo could not be made.")
    return JobView(
        id=job.id,
        status=job.job_state.public,
        style=job.style_id,
        result_url=await result_url(runtime, job),
        error=error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        **job_links(runtime.settings.public_base_url, job.id, job.public_id),
    )


def etag(job: Job) -> str:
    """Changes whenever anything a client sees changes (state, error, result)."""
    basis = f"{job.id}|{job.state}|{job.updated_at.isoformat()}|{job.result_key}|{job.error_code}"
    return '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'
