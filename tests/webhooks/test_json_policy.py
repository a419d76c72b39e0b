"""One JSON policy at every entry point (photobot.jsontext): a key given twice or nesting past the limit is a 4xx
problem and changes nothing — on the kiosk API, the admin API and the kie callback receiver — and a kie signature
covers the task id the callback acts on (a body naming two task ids is refused)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photobot.db import Database
from photobot.db.models import Event, Job
from tests.support.stack import Stack, StackFactory, fast_sim

RIGHT_KEY = "kie-hmac-right-key-0123456789"
WRONG_KEY = "kie-hmac-wrong-key-9876543210"


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def _counts(env: Stack) -> tuple[int, int]:
    async with env.db.session() as session:
        jobs = (await session.execute(sa.select(sa.func.count()).select_from(Job))).scalar_one()
        events = (await session.execute(sa.select(sa.func.count()).select_from(Event))).scalar_one()
    return int(jobs), int(events)


def _nested(depth: int) -> bytes:
    return b'{"style": ' + b"[" * depth + b"]" * depth + b"}"


async def test_a_signature_covers_the_task_the_callback_acts_on(database: Database, stack: StackFactory) -> None:
    # The review's attack: job A's valid signature, job B's callback token, a body whose top-level taskId is A's
    # (what the signature check read) and whose data.taskId is B's (what the parser acted on) → B failed, refunded.
    async with stack(database, fast_sim(hmac_key=WRONG_KEY), kie_webhook_hmac_key=RIGHT_KEY) as env:
        a, b = await env.submit(), await env.submit()
        task_a = (await env.wait_state(a, ("waiting",))).provider_task_id or ""
        task_b = (await env.wait_state(b, ("waiting",))).provider_task_id or ""
        before = await env.snapshot(b)
        forged = {"code": 501, "msg": "failed", "taskId": task_a, "data": {"taskId": task_b, "state": "fail"}}
        body = json.dumps(forged).encode()
        _refused(await env.post_callback(body, token=env.token(b), hmac_key=RIGHT_KEY, task_id=task_a), 401,
                 "unauthorized")  # fmt: skip
        _refused(await env.post_callback(body, token=env.token(b), hmac_key=RIGHT_KEY, task_id=task_b), 401,
                 "unauthorized")  # fmt: skip
        await asyncio.sleep(0.2)
        assert await env.snapshot(b) == before
        assert (await env.job(b)).state == "waiting"


async def test_duplicate_keys_and_deep_nesting_are_refused_everywhere(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        waiting = await env.submit()
        job = await env.wait_state(waiting, ("waiting",))
        before_job = await env.snapshot(waiting)
        before = await _counts(env)
        json_headers = {**env.auth, "Content-Type": "application/json"}
        admin_headers = {**env.admin, "Content-Type": "application/json"}

        twice = b'{"style": "nope", "style": "pb_a", "image_url": "https://example.com/a.jpg"}'
        _refused(await env.client.post("/v1/jobs", content=twice, headers=json_headers), 422, "validation_error")
        for depth in (40, 100_000):
            _refused(await env.client.post("/v1/jobs", content=_nested(depth), headers=json_headers), 422,
                     "validation_error")  # fmt: skip
            _refused(await env.client.post("/v1/admin/events", content=_nested(depth), headers=admin_headers), 422,
                     "validation_error")  # fmt: skip
        admin_twice = b'{"name": "A", "name": "B", "credits": 5}'
        _refused(await env.client.post("/v1/admin/events", content=admin_twice, headers=admin_headers), 422,
                 "validation_error")  # fmt: skip

        token = env.token(waiting)
        task = job.provider_task_id or ""
        for depth in (40, 100_000):
            deep_body = b'{"code": 200, "data": ' + b"[" * depth + b"]" * depth + b"}"
            response = await env.post_callback(deep_body, token=token)
            assert 400 <= response.status_code < 500, response.text
        dup_body = json.dumps({"code": 200, "data": {"taskId": task, "state": "fail"}})[:-1] + ', "data": {}}'
        _refused(await env.post_callback(dup_body.encode(), token=token), 400, "malformed_json")

        await asyncio.sleep(0.2)
        assert await _counts(env) == before
        assert await env.snapshot(waiting) == before_job

        # A deep `resultJson` string inside a well-formed callback is no result at all, not a crash: the success hint
        # is confirmed with the provider's own API (which has the real result), as for any callback.
        deep = "[" * 100_000 + "]" * 100_000
        body = json.dumps({"code": 200, "data": {"taskId": task, "state": "success", "resultJson": deep}}).encode()
        assert (await env.post_callback(body, token=token)).status_code == 200
        await env.wait_for(waiting, "completed")


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=4), inner, max_size=3), max_leaves=12)  # fmt: skip


def _hostile(draw_value: Any, key: str, depth: int) -> bytes:
    """A JSON object repeating `key` and wrapping a value `depth` lists deep."""
    wrapped = "[" * depth + json.dumps(draw_value) + "]" * depth
    return f'{{"{key}": 1, "{key}": {wrapped}}}'.encode()


async def test_generated_hostile_json_never_gets_a_5xx(pg_database: Database, stack: StackFactory) -> None:
    async with stack(pg_database, fast_sim(drop_rate=1.0)) as env:
        waiting = await env.submit()
        await env.wait_state(waiting, ("waiting",))
        before = await _counts(env), await env.snapshot(waiting)
        token = env.token(waiting)
        seen: list[int] = []

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(value=_json, key=st.sampled_from(["style", "name", "code", "data", "credits"]),
               depth=st.integers(0, 3000))  # fmt: skip
        def probe(value: Any, key: str, depth: int) -> None:
            body = _hostile(value, key, depth)

            async def send() -> list[int]:
                kiosk = {**env.auth, "Content-Type": "application/json"}
                answers = [
                    await env.client.post("/v1/jobs", content=body, headers=kiosk),
                    await env.client.post("/v1/admin/events", content=body,
                                          headers={**env.admin, "Content-Type": "application/json"}),
                    await env.post_callback(body, token=token),
                ]  # fmt: skip
                return [a.status_code for a in answers]

            codes = asyncio.run_coroutine_threadsafe(send(), loop).result(60)
            seen.extend(codes)
            assert all(400 <= c < 500 for c in codes), (codes, body[:200])

        loop = asyncio.get_running_loop()
        await asyncio.to_thread(probe)
        assert seen
        assert (await _counts(env), await env.snapshot(waiting)) == before


async def test_a_callback_on_another_providers_endpoint_changes_nothing(
    database: Database, stack: StackFactory
) -> None:
    async with stack(database, fast_sim(drop_rate=1.0)) as env:
        job_id = await env.submit()
        job = await env.wait_state(job_id, ("waiting",))
        await env.set_job(job_id, provider="fal")  # the job is fal's; the callback arrives on the kie endpoint
        before = await env.snapshot(job_id)
        body = env.callback_body(job.provider_task_id or "", state="fail")
        _refused(await env.post_callback(body, token=env.token(job_id)), 403, "forbidden")
        assert await env.snapshot(job_id) == before


async def test_a_forged_early_success_does_not_take_the_real_callbacks_slot(
    database: Database, stack: StackFactory
) -> None:
    # A valid token and a "success" the provider does not confirm: the job goes back to waiting, and the provider's
    # real success callback, when it comes, is applied at once (not ignored as a duplicate until the reconciler).
    async with stack(database, fast_sim(callback_delay_s=2.0), reconcile_after_s=120) as env:
        before = await env.scrape()  # the counters are the process's: other tests in this process counted too
        job_id = await env.submit()
        job = await env.wait_state(job_id, ("waiting",))
        task = job.provider_task_id or ""
        forged = env.callback_body(task, result_url="https://example.com/forged.png")
        assert (await env.post_callback(forged, token=env.token(job_id))).status_code == 200
        await env.wait_for(job_id, "completed", timeout=15)
        while env.sim.stats.callbacks_sent < 1:  # the provider's own success callback
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        samples = await env.scrape()

        def counted(outcome: str) -> float:
            labels = {"provider": "kie", "outcome": outcome}
            return samples.get_value("photobot_callbacks_total", **labels) - before.get_value(
                "photobot_callbacks_total", **labels
            )

        assert counted("duplicate") == 0
        assert counted("accepted") >= 1
