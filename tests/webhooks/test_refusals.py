"""Callbacks we refuse: bad tokens, wrong job, bad or missing HMAC, oversized, malformed, unknown shapes.

Every refusal leaves the job row, its ledger, the webhook events and the notifications exactly as they were.
"""

from __future__ import annotations

import asyncio
import json
import time

from photobot.db import Database
from photobot.db.models import Job
from photobot.signing import CallbackTokens
from tests.support.stack import Stack, StackFactory, fast_sim

RIGHT_KEY = "kie-hmac-right-key-0123456789"
WRONG_KEY = "kie-hmac-wrong-key-9876543210"


async def _waiting_job(env: Stack) -> Job:
    job_id = await env.submit()
    job = await env.wait_state(job_id, ("waiting",))
    assert job.provider_task_id
    while env.sim.state.tasks[job.provider_task_id]["state"] != "success":
        await asyncio.sleep(0.02)
    return await env.job(job_id)


def _problem(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_refused_tokens_and_bodies(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        a, b = await _waiting_job(env), await _waiting_job(env)
        body_a = env.callback_body(a.provider_task_id or "")
        body_b = env.callback_body(b.provider_task_id or "")
        token_a = env.token(a.id)
        before = (await env.snapshot(a.id), await env.snapshot(b.id))

        forged = token_a[:-4] + ("AAAA" if not token_a.endswith("AAAA") else "BBBB")
        other_secret = CallbackTokens(["not-our-secret-key-" + "y" * 20]).issue(a.id, "kie", time.time() + 600)
        expired = env.token(a.id, deadline_ts=time.time() - 3600)  # expiry = deadline + 10 minutes: passed
        fal_token = env.app.state.providers.tokens.issue(a.id, "fal", time.time() + 600)
        for token in (None, "", "garbage", forged, other_secret, expired, fal_token):
            _problem(await env.post_callback(body_a, token=token), 401, "unauthorized")
        secret = env.settings.secret_keys()[0]
        assert all(secret not in t for t in (token_a, forged))

        # job A's (valid) token with job B's task: refused, nothing moves on either job
        _problem(await env.post_callback(body_b, token=token_a), 403, "forbidden")

        _problem(await env.post_callback(b"x" * (256 * 1024 + 1), token=token_a), 413, "payload_too_large")

        async def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(40):
                yield b" " * 8192

        response = await env.client.post(
            "/webhooks/kie", params={"token": token_a}, content=chunks(), headers={"Content-Type": "application/json"}
        )
        _problem(response, 413, "payload_too_large")
        _problem(await env.post_callback(b'{"code": 200, "data": {', token=token_a), 400, "malformed_json")
        _problem(await env.post_callback(b"[1, 2, 3]", token=token_a), 400, "malformed_json")
        for shape in (
            {"code": 200, "msg": "ok"},
            {"code": 200, "data": {"state": "success"}},
            {"code": 200, "data": {"taskId": a.provider_task_id, "state": "exploded"}},
        ):
            _problem(await env.post_callback(json.dumps(shape).encode(), token=token_a), 422, "unknown_callback_shape")

        await asyncio.sleep(0.3)
        assert (await env.snapshot(a.id), await env.snapshot(b.id)) == before
        # the genuine callback still goes through
        assert (await env.post_callback(body_a, token=token_a)).status_code == 200
        await env.wait_for(a.id, "completed")
        assert (await env.job(b.id)).state == "waiting"


async def test_kie_hmac(database: Database, stack: StackFactory) -> None:
    # The simulator signs with a key that is not ours: its callback is refused (401) and changes nothing.
    async with stack(database, fast_sim(hmac_key=WRONG_KEY), kie_webhook_hmac_key=RIGHT_KEY) as env:
        job_id = await env.submit()
        job = await env.wait_state(job_id, ("waiting",))
        while env.sim.stats.callbacks_sent < 1:
            await asyncio.sleep(0.02)
        assert env.sim.stats.callbacks_failed == 1
        task_id = job.provider_task_id or ""
        body = env.callback_body(task_id)
        token = env.token(job_id)
        before = await env.snapshot(job_id)

        _problem(await env.post_callback(body, token=token), 401, "unauthorized")  # no HMAC headers
        _problem(await env.post_callback(body, token=token, hmac_key=WRONG_KEY, task_id=task_id), 401, "unauthorized")
        _problem(await env.post_callback(body, token=token, hmac_key=RIGHT_KEY, task_id="other"), 401, "unauthorized")
        stale = {"X-Webhook-Timestamp": str(int(time.time()) - 3600)}
        from photobot.providers.signatures import kie_signature

        stale["X-Webhook-Signature"] = kie_signature(RIGHT_KEY, task_id, stale["X-Webhook-Timestamp"])
        _problem(await env.post_callback(body, token=token, headers=stale), 401, "unauthorized")
        # signed headers but a body that is not JSON: a 400, not a crash
        _problem(
            await env.post_callback(b"{not json", token=token, hmac_key=RIGHT_KEY, task_id=task_id),
            400,
            "malformed_json",
        )
        await asyncio.sleep(0.3)
        assert await env.snapshot(job_id) == before
        assert (await env.job(job_id)).state == "waiting"

        ok = await env.post_callback(body, token=token, hmac_key=RIGHT_KEY, task_id=task_id)
        assert ok.status_code == 200
        await env.wait_for(job_id, "completed")
        assert await env.ledger(job_id) == ["reserve", "settle"]
