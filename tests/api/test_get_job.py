"""`GET /v1/jobs/{id}`: the view, signed result links, ETag / 304 and Retry-After."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa

from photobot.db.models import Job, utcnow
from photobot.jobs import credits
from tests.support.api import assert_accepted, assert_problem, submit_json
from tests.support.images import jpeg
from tests.support.stack import Stack

VIEW_KEYS = {
    "id", "status", "style", "status_url", "page_url", "qr_url", "result_url", "error",
    "created_at", "updated_at", "completed_at",
}  # fmt: skip


async def set_job(api: Stack, job_id: str, **values: Any) -> None:
    async with api.db.session() as session:
        await session.execute(sa.update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values))


async def get(api: Stack, job_id: str, **headers: str) -> httpx.Response:
    return await api.client.get(f"/v1/jobs/{job_id}", headers={**api.auth, **headers})


async def test_job_view_etag_and_retry_after(api: Stack) -> None:
    accepted = assert_accepted(await submit_json(api, style="pb_c"))
    job_id = accepted["id"]
    assert accepted["status_url"] == f"{api.base_url}/v1/jobs/{job_id}"
    assert accepted["page_url"].startswith(f"{api.base_url}/p/") and accepted["qr_url"].endswith("/qr.png")

    response = await get(api, job_id)
    assert response.status_code == 200
    view = response.json()
    assert set(view) == VIEW_KEYS
    assert (view["id"], view["status"], view["style"]) == (job_id, "pending", "pb_c")
    assert view["result_url"] is None and view["error"] is None and view["completed_at"] is None
    assert view["page_url"] == accepted["page_url"]
    assert datetime.fromisoformat(view["created_at"]) == datetime.fromisoformat(accepted["created_at"])
    assert response.headers["retry-after"] == "2"
    tag = response.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')

    # conditional GET: 304 with no body; the weak form and lists of tags match too
    for header in (tag, f"W/{tag}", f'"nope", {tag}', "*"):
        not_modified = await get(api, job_id, **{"If-None-Match": header})
        assert not_modified.status_code == 304, header
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == tag and not_modified.headers["retry-after"] == "2"
    assert (await get(api, job_id, **{"If-None-Match": '"something-else"'})).status_code == 200

    # in flight: "processing"; a new ETag
    await set_job(api, job_id, state="waiting")
    processing = await get(api, job_id, **{"If-None-Match": tag})
    assert processing.status_code == 200 and processing.json()["status"] == "processing"
    assert processing.headers["etag"] != tag and "retry-after" in processing.headers

    # completed: a signed, expiring result link that works; no Retry-After any more
    media_root = Path(urlsplit(api.settings.resolved_storage_url).path)
    (media_root / "results").mkdir(parents=True, exist_ok=True)
    result = jpeg((32, 32), "gold")
    (media_root / "results" / f"{job_id}.jpg").write_bytes(result)
    now = utcnow()
    await set_job(api, job_id, state="completed", result_key=f"results/{job_id}.jpg", completed_at=now)
    async with api.db.session() as session:  # what the dispatcher does on completion, for the ledger audit
        job = await session.get(Job, job_id)
        assert job is not None
        await credits.settle(session, job)
    done = await get(api, job_id)
    view = done.json()
    assert view["status"] == "completed" and "retry-after" not in done.headers
    assert view["completed_at"] is not None
    query = parse_qs(urlsplit(view["result_url"]).query)
    assert {"exp", "sig"} <= query.keys()
    async with httpx.AsyncClient() as anyone:  # the link needs no token
        fetched = await anyone.get(view["result_url"])
        assert fetched.status_code == 200 and fetched.content == result
        tampered = view["result_url"].replace(f"exp={query['exp'][0]}", f"exp={int(query['exp'][0]) + 1}")
        assert (await anyone.get(tampered)).status_code == 403
    assert (await get(api, job_id, **{"If-None-Match": done.headers["etag"]})).status_code == 304


async def test_failed_job_shows_error(api: Stack) -> None:
    job_id = assert_accepted(await submit_json(api))["id"]
    async with api.db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        await session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(state="failed", error_code="provider_rejected", error_message="The photo was refused.")
        )
        await credits.release(session, job)
    response = await get(api, job_id)
    view = response.json()
    assert view["status"] == "failed" and view["result_url"] is None
    assert view["error"] == {"code": "provider_rejected", "message": "The photo was refused."}
    assert "retry-after" not in response.headers
    assert_problem(await get(api, "f" * 32), 404, "not_found")
    assert_problem(await get(api, "../../etc/passwd"), 404, "not_found")
