"""With PHOTOBOT_STORAGE_URL=s3://… (moto's real S3 API) the input photo lands in the bucket."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Callable

from PIL import Image

from photobot.db import Database
from photobot.settings import Settings
from tests.support.api import (
    assert_accepted,
    assert_problem,
    job_row,
    read_stored,
    snapshot,
    stored_keys,
    submit_json,
    submit_multipart,
    unchanged,
)
from tests.support.images import jpeg
from tests.support.stack import open_app


async def test_submission_stores_input_in_the_bucket(
    database: Database, make_settings: Callable[..., Settings], s3_storage_url: str
) -> None:
    async with open_app(database, make_settings, credits=3, storage_url=s3_storage_url) as served:
        api = served
        assert stored_keys(api) == frozenset()
        async with unchanged(api):
            assert_problem(await submit_json(api, b"GIF89a" + b"\x00" * 50), 415, "unsupported_media_type")
        job = await job_row(api, assert_accepted(await submit_multipart(api, jpeg((90, 60), "orange")))["id"])
        assert stored_keys(api) == {job.input_key} == {f"uploads/{job.id}.jpg"}
        with Image.open(io.BytesIO(read_stored(api, job.input_key))) as img:
            assert (img.format, img.size) == ("JPEG", (90, 60))

        # 6 at once for the 2 credits left: the losers' photos (stored before the transaction) are deleted again
        statuses = Counter(r.status_code for r in await asyncio.gather(*(submit_json(api) for _ in range(6))))
        assert statuses == {202: 2, 402: 4}, statuses
        state = await snapshot(api)
        assert state.jobs == 3 and len(state.stored) == 3
        async with unchanged(api):
            assert_problem(await submit_json(api), 402, "no_credits")
