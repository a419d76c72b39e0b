"""The fal.ai adapter against the simulator's fal mode, and webhook signatures against a local JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from photobot.providers.base import GenerationRequest
from photobot.providers.errors import CallbackMalformed, CallbackUnknownShape, ProviderError, SignatureInvalid
from photobot.providers.fal import FalProvider, parse_fal_webhook
from photobot.providers.signatures import JwksCache, fal_message, verify_fal_signature
from photobot.providers.simulator import Simulator
from photobot.settings import Settings
from tests.support.images import png as png_image
from tests.support.providers import Aux, provider_settings

KEY = "fal-key-id:fal-key-secret"
MODEL = "fal-ai/nano-banana-pro/edit"


def req(aux: Aux, **kw: object) -> GenerationRequest:
    return GenerationRequest(MODEL, "a watercolour portrait", (f"{aux.url}/input.png",),
                             callback_url=aux.callback_url("fal"), **kw)  # type: ignore[arg-type]  # fmt: skip


async def test_submit_status_result_and_signed_webhook(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    fal = FalProvider(http, settings)
    submitted = await fal.submit(req(aux, output_format="jpg", aspect_ratio="3:4"), KEY)
    assert set(submitted.meta) == {"status_url", "response_url", "cancel_url"}
    assert "/fal-ai/nano-banana-pro/requests/" in submitted.meta["response_url"]
    assert "/edit/" not in submitted.meta["status_url"]
    (hook,) = await aux.wait_for("fal")
    await fal.verify_callback(hook.body, hook.headers)  # the simulator's JWKS
    event = fal.parse_callback(hook.body)
    assert event.task_id == submitted.task_id and event.outcome == "success" and not event.needs_fetch
    status = await fal.fetch_status(submitted.task_id, submitted.meta, KEY)
    assert status.state == "success" and status.result_urls == event.result_urls
    image = await http.get(status.result_urls[0])
    assert image.headers["content-type"] == "image/jpeg"


async def test_pending_status_before_completion(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.callback_delay_s = 5
    fal = FalProvider(http, settings)
    submitted = await fal.submit(req(aux), KEY)
    assert (await fal.fetch_status(submitted.task_id, submitted.meta, KEY)).state in ("pending", "running")


async def test_payload_error_means_fetch_the_result(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.fal_payload_error = True
    fal = FalProvider(http, settings)
    submitted = await fal.submit(req(aux), KEY)
    (hook,) = await aux.wait_for("fal")
    event = fal.parse_callback(hook.body)
    assert event.outcome == "success" and event.needs_fetch and event.result_urls == ()
    status = await fal.fetch_status(event.task_id, submitted.meta, KEY)
    assert status.state == "success" and len(status.result_urls) == 1


async def test_error_webhook_and_failed_status(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.fal_failure_rate = 1.0
    fal = FalProvider(http, settings)
    submitted = await fal.submit(req(aux), KEY)
    (hook,) = await aux.wait_for("fal")
    event = fal.parse_callback(hook.body)
    assert event.outcome == "fail" and event.fail_code == "ERROR" and "generating" in (event.fail_message or "")
    status = await fal.fetch_status(submitted.task_id, submitted.meta, KEY)
    assert status.state == "fail"


async def test_errors_are_classified(
    simulator: Simulator, aux: Aux, settings: Settings, http: httpx.AsyncClient
) -> None:
    simulator.config.fal_keys = [KEY]
    fal = FalProvider(http, settings)
    with pytest.raises(ProviderError) as info:
        await fal.submit(req(aux), "wrong:key")
    assert info.value.code == "provider_auth" and info.value.key_effect == "disable"
    with pytest.raises(ProviderError) as info:
        await fal.fetch_status("x", {}, KEY)
    assert info.value.code == "provider_bad_response" and not info.value.transient
    with pytest.raises(ProviderError) as info:
        await fal.submit(GenerationRequest("nano-banana-pro", "p", ("https://x/y.png",)), KEY)
    assert info.value.code == "provider_validation"


async def test_storage_upload_for_private_inputs(
    simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    settings = provider_settings(make_settings, simulator, allow_private_networks=False)
    fal = FalProvider(http, settings)
    png = png_image((160, 120), (200, 80, 40))
    prepared = await fal.prepare_input(f"{aux.url}/input.png", KEY, data=png, content_type="image/png")
    assert prepared.via == "uploaded" and (await http.get(prepared.url)).content == png
    public = await fal.prepare_input("https://8.8.8.8/in.png", KEY, data=png)
    assert public.via == "signed"


def test_webhook_payload_variants() -> None:
    ok = {"request_id": "r1", "gateway_request_id": "g", "status": "OK",
          "payload": {"images": [{"url": "https://v3.fal.media/a.png", "content_type": "image/png"}]}}  # fmt: skip
    assert parse_fal_webhook(json.dumps(ok).encode()).result_urls == ("https://v3.fal.media/a.png",)
    err = {"request_id": "r1", "status": "ERROR", "error": "Invalid status code: 422", "payload": {"detail": []}}
    assert parse_fal_webhook(json.dumps(err).encode()).outcome == "fail"
    pe = {"request_id": "r1", "status": "OK", "payload": None, "payload_error": "too large"}
    assert parse_fal_webhook(json.dumps(pe).encode()).needs_fetch
    with pytest.raises(CallbackMalformed):
        parse_fal_webhook(b"{")
    with pytest.raises(CallbackUnknownShape):
        parse_fal_webhook(b'{"status": "OK"}')
    with pytest.raises(CallbackUnknownShape):
        parse_fal_webhook(b'{"request_id": "r", "status": "MAYBE"}')


# --- signatures against a JWKS served by a local server ---------------------------------------------------


def jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}


def signed(key: Ed25519PrivateKey, body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    sig = key.sign(fal_message("req-1", "user-1", stamp, body)).hex()
    return {"X-Fal-Webhook-Request-Id": "req-1", "X-Fal-Webhook-User-Id": "user-1",
            "X-Fal-Webhook-Timestamp": stamp, "X-Fal-Webhook-Signature": sig}  # fmt: skip


BODY = b'{"request_id": "req-1", "status": "OK", "payload": {"images": []}}'


async def test_signature_valid_tampered_wrong_key_stale(aux: Aux, http: httpx.AsyncClient) -> None:
    key = Ed25519PrivateKey.generate()
    aux.jwks = {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, jwk(key)]}
    cache = JwksCache(http, f"{aux.url}/jwks.json")
    await verify_fal_signature(cache, BODY, signed(key, BODY))
    with pytest.raises(SignatureInvalid):
        await verify_fal_signature(cache, BODY.replace(b"OK", b"KO"), signed(key, BODY))
    with pytest.raises(SignatureInvalid):
        await verify_fal_signature(cache, BODY, signed(Ed25519PrivateKey.generate(), BODY))
    with pytest.raises(SignatureInvalid):
        await verify_fal_signature(cache, BODY, signed(key, BODY, ts=int(time.time()) - 301))
    with pytest.raises(SignatureInvalid):
        await verify_fal_signature(cache, BODY, signed(key, BODY, ts=int(time.time()) + 400))
    headers = signed(key, BODY)
    del headers["X-Fal-Webhook-Signature"]
    with pytest.raises(SignatureInvalid):
        await verify_fal_signature(cache, BODY, headers)
    assert aux.jwks_fetches <= 2  # cached; one refresh at most for the unknown key (within refresh_min_s)


async def test_jwks_rotation_and_cache_ttl(aux: Aux, http: httpx.AsyncClient) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    aux.jwks = {"keys": [jwk(old)]}
    now = [1000.0]
    cache = JwksCache(http, f"{aux.url}/jwks.json", refresh_min_s=60, clock=lambda: now[0])
    await verify_fal_signature(cache, BODY, signed(old, BODY))
    aux.jwks = {"keys": [jwk(new), jwk(old)]}  # fal rotates: the new key is published
    with pytest.raises(SignatureInvalid):  # within refresh_min_s the cache is not hammered
        await verify_fal_signature(cache, BODY, signed(new, BODY))
    now[0] += 61
    await verify_fal_signature(cache, BODY, signed(new, BODY))  # a miss refreshes the keys
    fetches = aux.jwks_fetches
    now[0] += 3600
    await verify_fal_signature(cache, BODY, signed(old, BODY))
    assert aux.jwks_fetches == fetches  # known keys need no fetch
    aux.jwks = {"keys": [jwk(new)]}  # the old key is withdrawn
    now[0] += 86400
    with pytest.raises(SignatureInvalid):  # after 24 h the cache is reloaded and the old key is gone
        await verify_fal_signature(cache, BODY, signed(old, BODY))


async def test_provider_verifies_against_configured_jwks_url(
    simulator: Simulator, aux: Aux, make_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    key = Ed25519PrivateKey.generate()
    aux.jwks = {"keys": [jwk(key)]}
    fal = FalProvider(http, provider_settings(make_settings, simulator, fal_jwks_url=f"{aux.url}/jwks.json"))
    await fal.verify_callback(BODY, signed(key, BODY))
    with pytest.raises(SignatureInvalid):
        await fal.verify_callback(BODY + b" ", signed(key, BODY))
    assert hashlib.sha256(BODY).hexdigest() in fal_message("a", "b", "1", BODY).decode()


@pytest.mark.parametrize(
    ("body", "outcome", "needs_fetch"),
    [
        ({"request_id": "r", "status": "ERROR", "payload": "not an object"}, "fail", False),
        ({"request_id": "r", "status": "OK", "payload": {"images": 5}}, "success", True),
        ({"request_id": "r", "status": "OK", "payload": {"images": "abc"}}, "success", True),
    ],
)
def test_odd_payload_types_parse_without_crashing(body: dict, outcome: str, needs_fetch: bool) -> None:
    """Found by hypothesis (tests/fuzz): a string `payload` on ERROR, non-list `images` on OK."""
    event = parse_fal_webhook(json.dumps(body).encode())
    assert (event.outcome, event.result_urls, event.needs_fetch) == (outcome, (), needs_fetch)
