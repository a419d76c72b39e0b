"""Abuse: forged, replayed, expired and cross-job callbacks; SSRF targets. Every attempt must be refused and
change nothing; the refusals are counted in the report printed at the end of the run."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from photobot.db import Database
from photobot.db.audit import audit
from photobot.db.models import Job, WebhookEvent
from photobot.net.addresses import AddressPolicy
from photobot.net.errors import FetchError
from photobot.net.fetcher import SafeFetcher
from photobot.providers.errors import SignatureInvalid
from photobot.providers.signatures import kie_signature, verify_kie_hmac
from photobot.signing import BadToken, CallbackTokens
from tests.chaos.harness import SECRET, ChaosEnv, chaos_env, sim_config
from tests.chaos.report import refused
from tests.support.images import jpeg
from tests.support.servers import serve

HMAC_KEY = "chaos-hmac-key"


def kie_body(task_id: str, state: str = "success", result_url: str = "http://127.0.0.1:9/x.png") -> bytes:
    ok = state == "success"
    data = {
        "taskId": task_id, "model": "nano-banana-pro", "state": state,
        "resultJson": json.dumps({"resultUrls": [result_url]}) if ok else None,
        "failCode": "" if ok else "500", "failMsg": None if ok else "boom",
    }  # fmt: skip
    return json.dumps({"code": 200 if ok else 501, "msg": "done", "data": data}).encode()


def signed(task_id: str, ts: int | None = None, key: str = HMAC_KEY) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Signature": kie_signature(key, task_id, ts),
    }


def test_replayed_signature_after_301_s_is_refused() -> None:
    """The kie HMAC check with an injected clock: the same signature is good now and refused 301 s later."""
    ts = 1_800_000_000
    body = kie_body("task-replay")
    headers = signed("task-replay", ts)
    verify_kie_hmac(HMAC_KEY, body, headers, now=ts + 299)  # fresh: accepted
    for later in (301, 3600, -301):
        with pytest.raises(SignatureInvalid):
            verify_kie_hmac(HMAC_KEY, body, headers, now=ts + later)
        refused("callback replayed (|Δt| > 300 s)", True)


def test_expired_and_cross_provider_tokens_are_refused() -> None:
    tokens = CallbackTokens([SECRET])
    token = tokens.issue("job-1", "kie", deadline_ts=1_800_000_000)
    assert tokens.verify(token, "kie", now=1_800_000_000).job_id == "job-1"
    for attempt, call in {
        "token expired": lambda: tokens.verify(token, "kie", now=1_800_000_000 + 601),
        "token for another provider": lambda: tokens.verify(token, "fal", now=1_800_000_000),
        "token signed with another secret": lambda: CallbackTokens(["other-secret-" + "z" * 32]).verify(token, "kie"),
    }.items():
        with pytest.raises(BadToken):
            call()
        refused(attempt, True)


async def test_forged_replayed_expired_cross_job_callbacks_over_http(pg_database: Database, tmp_path: Path) -> None:
    config = sim_config(callback_delay_s=30.0, hmac_key=HMAC_KEY)  # real callbacks come much later
    async with chaos_env(pg_database, tmp_path, config, kie_webhook_hmac_key=HMAC_KEY, job_timeout_s=120) as env:
        a, b = await env.submit(2)
        for _ in range(100):
            jobs = {j.id: j for j in [await _job(env, a), await _job(env, b)]}
            if all(j.provider_task_id for j in jobs.values()):
                break
            await asyncio.sleep(0.1)
        task_a, task_b = jobs[a].provider_task_id, jobs[b].provider_task_id
        assert task_a and task_b
        tokens = env.app.state.providers.tokens
        token_a = tokens.issue(a, "kie", time.time() + 600)
        before = {a: jobs[a].state, b: jobs[b].state}
        forger = URLSafeTimedSerializer("not-our-secret", salt="photobot.callback")
        attempts = {
            "callback without token": (None, kie_body(task_a), signed(task_a), 401),
            "callback with garbage token": ("abc.def.ghi", kie_body(task_a), signed(task_a), 401),
            "callback with forged token": (
                forger.dumps({"j": a, "p": "kie", "e": 2**31}),
                kie_body(task_a),
                signed(task_a),
                401,
            ),
            "callback with expired token": (
                tokens.issue(a, "kie", time.time() - 700),
                kie_body(task_a),
                signed(task_a),
                401,
            ),
            "callback with fal token on kie": (
                tokens.issue(a, "fal", time.time() + 600),
                kie_body(task_a),
                signed(task_a),
                401,
            ),
            "callback with forged HMAC": (token_a, kie_body(task_a), signed(task_a, key="wrong"), 401),
            "callback without HMAC": (token_a, kie_body(task_a), {"Content-Type": "application/json"}, 401),
            "callback replayed after 301 s": (token_a, kie_body(task_a), signed(task_a, int(time.time()) - 301), 401),
            "callback cross-job (A's token, B's task)": (token_a, kie_body(task_b), signed(task_b), 403),
            "callback oversized body": (token_a, b"{" + b" " * 300_000 + b"}", signed(task_a), 413),
        }
        for kind, (token, body, headers, expected) in attempts.items():
            params = {"token": token} if token is not None else {}
            response = await env.client.post("/webhooks/kie", params=params, content=body, headers=headers)
            ok = response.status_code == expected and response.headers["content-type"].startswith(
                "application/problem+json"
            )
            refused(kind, ok)
            assert ok, (kind, response.status_code, response.text[:200])
        after = {a: (await _job(env, a)).state, b: (await _job(env, b)).state}
        assert after == before
        async with env.db.session() as session:
            recorded = (await session.execute(sa.select(sa.func.count()).select_from(WebhookEvent))).scalar_one()
        assert recorded == 0  # nothing refused was recorded
        assert not await audit(pg_database)


async def _job(env: ChaosEnv, job_id: str) -> Job:
    async with env.db.session() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


# --- SSRF ------------------------------------------------------------------------------------------------

PRIVATE_TARGETS = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IPv6 metadata
    "http://100.100.100.200/latest/meta-data/",  # Alibaba metadata (CGNAT range)
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",  # 127.0.0.1 as an integer
    "http://0x7f.0.0.1/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "https://rebind.example/",  # DNS answers a private address
    "https://mixed.example/",  # DNS answers public and private addresses
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://10.0.0.1/",
]

FAKE_DNS = {
    "metadata.google.internal": ["169.254.169.254"],
    "rebind.example": ["10.0.0.7"],
    "mixed.example": ["93.184.216.34", "192.168.0.7"],
    "localhost": ["127.0.0.1", "::1"],
}


async def _fake_dns(host: str) -> list[str]:
    return FAKE_DNS.get(host, ["127.0.0.1"])


@pytest.mark.parametrize("target", PRIVATE_TARGETS)
async def test_ssrf_targets_refused_by_the_fetcher(target: str) -> None:
    async with SafeFetcher(allow_private=False, resolver=_fake_dns, connect_timeout=1, timeout=3) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.stream_to_file(target, io.BytesIO(), max_bytes=1_000_000)
    refused(f"SSRF {target.split('/')[0]}//{target.split('/')[2][:28]}", True)


async def test_ssrf_redirect_chains_refused() -> None:
    """An allowed host (our loopback server, allowed explicitly) that redirects towards private targets."""
    hops = {"/r0": "/r1", "/r1": "/r2", "/r2": "http://169.254.169.254/latest/meta-data/"}

    async def redirect(request: Request) -> Response:
        path = request.url.path
        if path == "/to-private":
            return RedirectResponse("http://10.0.0.1/", 302)
        if path == "/to-file":
            return RedirectResponse("file:///etc/passwd", 302)
        if path == "/loop":
            return RedirectResponse("/loop", 302)
        return RedirectResponse(hops[path], 301)

    app = Starlette(routes=[Route("/{p:path}", redirect)])
    policy = AddressPolicy.allowing(["127.0.0.1"])
    async with (
        serve(app) as url,
        SafeFetcher(allow_private=False, allow_http=True, address_policy=policy, resolver=_fake_dns) as fetcher,
    ):
        for path in ("/r0", "/to-private", "/to-file", "/loop"):
            with pytest.raises(FetchError):
                await fetcher.stream_to_file(url + path, io.BytesIO(), max_bytes=1_000_000)
            refused(f"SSRF redirect chain {path}", True)


async def test_ssrf_through_the_intake_api(pg_database: Database, tmp_path: Path) -> None:
    """`image` as a URL on POST /v1/jobs, with the production network policy: refused with a 4xx problem."""
    async with chaos_env(pg_database, tmp_path, run_dispatcher=False, allow_private_networks=False) as env:
        for target in [t for t in PRIVATE_TARGETS if "example" not in t and "google" not in t]:
            response = await env.client.post("/v1/jobs", json={"style": "pb_a", "image": target}, headers=env.auth)
            ok = 400 <= response.status_code < 500 and response.headers["content-type"].startswith(
                "application/problem+json"
            )
            refused("SSRF via POST /v1/jobs image URL", ok)
            assert ok, (target, response.status_code, response.text[:200])
        good = await env.client.post(
            "/v1/jobs", files={"image": ("a.jpg", jpeg(color="teal"), "image/jpeg")}, data={"style": "pb_a"},
            headers=env.auth,
        )  # fmt: skip
        assert good.status_code == 202  # the same client is not refused for a real photo
