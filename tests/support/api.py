"""Helpers for the API tests: request shortcuts, problem+json checks, and the "nothing changed" snapshot.

`snapshot(env)` records everything a refused request must not touch: the number of jobs, ledger rows and job
transitions, every balance, the stored objects (media directory or S3 bucket) and the intake temp directory.
`unchanged(env)` wraps a block and asserts all of it is the same afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa

from photobot.db.models import CreditLedger, Event, Job, JobTransition, User
from photobot.storage.keys import is_upload
from tests.support.images import data_uri, jpeg
from tests.support.stack import Stack

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


# --- requests -----------------------------------------------------------------------------------
async def submit_multipart(
    env: Stack,
    image: bytes | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **fields: Any,
) -> httpx.Response:
    fields.setdefault("style", "pb_a")
    data = {k: str(v) for k, v in fields.items() if v is not None}
    files = {"image": (filename, jpeg() if image is None else image, content_type)}
    return await env.client.post("/v1/jobs", data=data, files=files, headers={**env.auth_as(token), **(headers or {})})


async def submit_json(
    env: Stack,
    image: str | bytes | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    fields.setdefault("style", "pb_a")
    if image is None:
        image = jpeg()
    body = {"image": data_uri(image) if isinstance(image, bytes) else image, **fields}
    return await env.client.post("/v1/jobs", json=body, headers={**env.auth_as(token), **(headers or {})})


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code)
    return body


def assert_accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"id", "status", "status_url", "page_url", "qr_url", "created_at"}, body
    assert body["status"] == "pending"
    assert response.headers["location"] == body["status_url"]
    return body


# --- state snapshots ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    jobs: int
    ledger: int
    transitions: int
    balances: tuple[tuple[str, int, int], ...]
    stored: frozenset[str]
    temp_files: frozenset[str]


def _bucket(env: Stack) -> tuple[str, dict[str, str]] | None:
    url = env.settings.resolved_storage_url
    if not url.startswith("s3://"):
        return None
    parts = urlsplit(url)
    return parts.netloc, {k: v[-1] for k, v in parse_qs(parts.query).items()}


def stored_keys(env: Stack) -> frozenset[str]:
    """Every object in the storage backend (the media directory, or the S3 bucket) besides the style catalogue's
    images (`styles/…`, stored when the stack starts): the photos of jobs."""
    return frozenset(k for k in _all_keys(env) if not k.startswith("styles/"))


def _all_keys(env: Stack) -> frozenset[str]:
    bucket = _bucket(env)
    if bucket is not None:
        import boto3

        name, query = bucket
        client = boto3.client(
            "s3",
            endpoint_url=query["endpoint_url"],
            region_name=query.get("region", "us-east-1"),
            aws_access_key_id=query.get("access_key", "testing"),
            aws_secret_access_key=query.get("secret_key", "testing"),
        )
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
        return frozenset(obj["Key"] for page in pages for obj in page.get("Contents", []))
    root = Path(urlsplit(env.settings.resolved_storage_url).path)
    return _files_under(root, skip={".readyz"})


def _files_under(root: Path, skip: set[str] | None = None) -> frozenset[str]:
    if not root.exists():
        return frozenset()
    return frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in (skip or set()))


def read_stored(env: Stack, key: str) -> bytes:
    bucket = _bucket(env)
    if bucket is not None:
        import boto3

        name, query = bucket
        client = boto3.client(
            "s3",
            endpoint_url=query["endpoint_url"],
            region_name=query.get("region", "us-east-1"),
            aws_access_key_id=query.get("access_key", "testing"),
            aws_secret_access_key=query.get("secret_key", "testing"),
        )
        return client.get_object(Bucket=name, Key=key)["Body"].read()
    return (Path(urlsplit(env.settings.resolved_storage_url).path) / key).read_bytes()


async def snapshot(env: Stack) -> Snapshot:
    async with env.db.session() as session:

        async def count(model: Any) -> int:
            return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()

        jobs, ledger, transitions = await count(Job), await count(CreditLedger), await count(JobTransition)
        balances = [("event", e.id, e.credits) for e in (await session.execute(sa.select(Event))).scalars()]
        balances += [("user", u.id, u.credits) for u in (await session.execute(sa.select(User))).scalars()]
    stored = await asyncio.to_thread(stored_keys, env)
    temp = _files_under(env.settings.var_dir / "tmp")
    return Snapshot(jobs, ledger, transitions, tuple(sorted(balances)), stored, temp)


@asynccontextmanager
async def unchanged(env: Stack) -> AsyncIterator[Snapshot]:
    """Assert that the block leaves no job, ledger row, balance change, stored object or temp file behind."""
    before = await snapshot(env)
    yield before
    after = await snapshot(env)
    assert after == before, f"state changed:\nbefore={before}\nafter={after}"


async def balance(env: Stack, *, event_id: int | None = None, user_id: int | None = None) -> int:
    async with env.db.session() as session:
        account = await session.get(Event, event_id) if event_id is not None else await session.get(User, user_id)
        assert account is not None
        return account.credits


async def ledger_sum(env: Stack, *, event_id: int | None = None, user_id: int | None = None) -> int:
    column = CreditLedger.event_id if event_id is not None else CreditLedger.user_id
    async with env.db.session() as session:
        query = sa.select(sa.func.coalesce(sa.func.sum(CreditLedger.delta), 0)).where(
            column == (event_id if event_id is not None else user_id)
        )
        return (await session.execute(query)).scalar_one()


async def cleaned_input(env: Stack, job_id: str, timeout: float = 20.0) -> Job:
    """The job once the submit step has cleaned its upload into the provider's input (a stack with a dispatcher)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await job_row(env, job_id)
        if not is_upload(job.input_key):
            return job
        assert job.state != "failed", (job.error_code, job.error_message)
        assert time.monotonic() < deadline, f"job {job_id} still holds its upload ({job.state})"
        await asyncio.sleep(0.05)


async def job_row(env: Stack, job_id: str) -> Job:
    async with env.db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def new_token(env: Stack, scope: str, *, event_id: int | None = None) -> tuple[int, str]:
    from photobot.services import access

    async with env.db.session() as session:
        record, token = await access.create_token(session, scope, event_id=event_id)
        assert record.id is not None
        return record.id, token


async def new_event(env: Stack, credits: int = 5) -> int:
    from photobot.services import accounts

    async with env.db.session() as session:
        event = await accounts.create_event(session, "Another party", credits)
        assert event.id is not None
        return event.id
