"""uvicorn's access log, run through photobot.logs, never shows a callback token."""

from __future__ import annotations

import asyncio
import io
import logging
from urllib.parse import parse_qs, urlsplit

from photobot.db import Database
from photobot.logs import JSONFormatter, RedactingFilter, Redactor, collect_secrets
from tests.support.stack import StackFactory, fast_sim


async def test_access_log_redacts_callback_token(sqlite_database: Database, stack: StackFactory) -> None:
    async with stack(sqlite_database, fast_sim(drop_rate=1.0)) as env:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JSONFormatter())
        handler.addFilter(RedactingFilter(Redactor(collect_secrets(env.settings))))
        loggers = [logging.getLogger("uvicorn.access"), logging.getLogger("photobot")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.INFO)
        try:
            job_id = await env.submit()
            job = await env.wait_state(job_id, ("waiting",))
            while env.sim.state.tasks[job.provider_task_id or ""]["state"] != "success":
                await asyncio.sleep(0.02)
            token = parse_qs(urlsplit(env.callback_url_of(job.provider_task_id or "")).query)["token"][0]
            body = env.callback_body(job.provider_task_id or "")
            assert (await env.post_callback(body, token=token)).status_code == 200
            assert (await env.post_callback(body, token=token + "x")).status_code == 401
            await env.wait_for(job_id, "completed")
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.removeHandler(handler)
                lg.setLevel(level)
        output = stream.getvalue()
        access = [line for line in output.splitlines() if "/webhooks/kie" in line]
        assert len(access) >= 2, output
        assert all("token=[redacted]" in line for line in access), access
        assert token not in output and token[:20] not in output
        assert env.settings.secret_keys()[0] not in output
