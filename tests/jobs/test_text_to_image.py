"""Text-to-image styles (a model that takes no input image, `google/nano-banana`): a job without a photo goes
through intake, the submit step and the simulator to a stored result; a photo sent to such a style is a 422 at
intake (nothing stored, no credit taken), and a missing photo for every other style is one too."""

from __future__ import annotations

import io
import json

import httpx
from PIL import Image

from photobot.db import Database
from photobot.services.styles import StyleIn, upsert_styles
from tests.support.api import assert_accepted, assert_problem, submit_json, submit_multipart, unchanged
from tests.support.stack import Stack, StackFactory, fast_sim

CASTLE = StyleIn(
    id="t2i_castle",
    name="Fairy-tale castle",
    prompt="A fairy-tale castle on a hill at dawn, watercolour, soft light",
    model="google/nano-banana",
    aspect_ratio="16:9",
    output_format="png",
    cost=2,
)


async def _add_castle(env: Stack) -> None:
    async with env.db.session() as session:
        await upsert_styles(session, [CASTLE])


async def _created_task(env: Stack, job_id: str) -> dict[str, object]:
    job = await env.job(job_id)
    assert job.provider_task_id is not None
    body = json.loads(str(env.sim.state.tasks[job.provider_task_id]["param"]))
    assert isinstance(body, dict)
    return body


async def test_a_prompt_only_job_completes_through_its_callback(database: Database, stack: StackFactory) -> None:
    async with stack(database) as env:
        await _add_castle(env)
        for submit in (submit_multipart, submit_json):
            if submit is submit_multipart:  # a multipart form with no file part at all (what `curl -F style=…` sends)
                form = {"style": (None, CASTLE.id), "email": (None, "guest@example.com")}
                response = await env.client.post("/v1/jobs", files=form, headers=env.auth)
            else:  # JSON without `image`
                response = await env.client.post("/v1/jobs", json={"style": CASTLE.id}, headers=env.auth)
            job_id = assert_accepted(response)["id"]
            job = await env.job(job_id)
            assert job.input_key is None and job.cost == 2 and job.model == "google/nano-banana"

            view = await env.wait_for(job_id, "completed")
            body = await _created_task(env, job_id)
            assert body["model"] == "google/nano-banana"
            inputs = body["input"]
            assert isinstance(inputs, dict)
            assert "image_input" not in inputs and "image_urls" not in inputs  # no image at all was sent
            assert inputs["prompt"] == CASTLE.prompt
            assert inputs["image_size"] == "16:9"  # google/* models also get the deprecated alias
            async with httpx.AsyncClient(timeout=10) as plain:
                result = await plain.get(view["result_url"])
            assert result.status_code == 200
            with Image.open(io.BytesIO(result.content)) as image:
                assert image.width > image.height  # the simulator honoured 16:9
            assert await env.ledger(job_id) == ["reserve", "settle"]
            assert [o for _, o, _ in await env.webhook_events(job_id)] == ["success"]  # via the callback
            assert (await env.job(job_id)).callback_at is not None


async def test_a_photo_for_a_text_to_image_style_is_refused_at_intake(database: Database, stack: StackFactory) -> None:
    async with stack(database, run_dispatcher=False) as env:
        await _add_castle(env)
        async with unchanged(env):
            for submit in (submit_multipart, submit_json):
                body = assert_problem(await submit(env, style=CASTLE.id), 422, "image_not_accepted")
                assert body["field"] == "image"
                assert "google/nano-banana" in body["detail"] and "without `image`" in body["detail"]
            # a photo given as a URL text field of a form is refused the same way
            form = {"style": (None, CASTLE.id), "image": (None, "https://example.com/p.jpg")}
            assert_problem(await env.client.post("/v1/jobs", files=form, headers=env.auth), 422, "image_not_accepted")
            # and a style that restyles a photo still needs one
            for response in (
                await env.client.post("/v1/jobs", files={"style": (None, "pb_a")}, headers=env.auth),
                await env.client.post("/v1/jobs", json={"style": "pb_a"}, headers=env.auth),
            ):
                body = assert_problem(response, 422, "validation_error")
                assert body["errors"] == [{"field": "image", "message": "required"}]


async def test_an_operator_retry_of_a_text_to_image_job_needs_no_photo(database: Database, stack: StackFactory) -> None:
    async with stack(database, fast_sim(failure_rate=1.0), view_as="admin") as env:
        await _add_castle(env)
        job_id = assert_accepted(await env.client.post("/v1/jobs", json={"style": CASTLE.id}, headers=env.auth))["id"]
        await env.wait_for(job_id, "failed")
        assert await env.ledger(job_id) == ["reserve", "release"]
        env.sim.config.failure_rate = 0.0
        response = await env.client.post(f"/v1/admin/jobs/{job_id}/retry", headers=env.admin)
        assert response.status_code == 201, response.text
        assert response.json()["retry_of"] == job_id
        new_id = response.json()["job"]["id"]
        assert new_id != job_id and (await env.job(new_id)).input_key is None
        await env.wait_for(new_id, "completed")
        assert await env.ledger(new_id) == ["reserve", "settle"]
