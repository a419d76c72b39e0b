"""Endpoint rules: which URLs may be endpoints, which secrets sign (rotation overlap), and the SSRF rules applied
again at every send.

The rotation and send-time tests run the real sender against a real receiver that verifies with `standardwebhooks`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import WebhookEndpoint, utcnow
from photobot.net import AddressNotAllowed, AddressPolicy, SafeFetcher, UrlNotAllowed
from photobot.outbound import outbox
from photobot.outbound.endpoints import TypesRefused, check_endpoint_url, parse_types, signing_secrets
from photobot.outbound.sender import WebhookSender
from photobot.services import webhooks as svc
from photobot.settings import Settings
from tests.support.http_server import FakeDNS
from tests.support.stack import StackFactory
from tests.support.webhooks import Receiver


# --- URLs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.example.com/in", UrlNotAllowed),  # https only
        ("ftp://hooks.example.com/in", UrlNotAllowed),
        ("https://user:secret@hooks.example.com/in", UrlNotAllowed),
        ("/relative", UrlNotAllowed),
        ("https://", UrlNotAllowed),
        ("https://10.0.0.1/in", AddressNotAllowed),
        ("https://192.168.1.20:8443/in", AddressNotAllowed),
        ("https://127.0.0.1/in", AddressNotAllowed),
        ("https://169.254.169.254/latest/meta-data", AddressNotAllowed),  # cloud metadata
        ("https://[::1]/in", AddressNotAllowed),
        ("https://[fd00::1]/in", AddressNotAllowed),
        ("https://[::ffff:10.0.0.1]/in", AddressNotAllowed),
        ("https://localhost/in", AddressNotAllowed),
        ("https://api.localhost./in", AddressNotAllowed),
        ("https://hooks.example.com/" + "x" * 2000, UrlNotAllowed),
    ],
)
def test_private_and_non_https_urls_are_refused(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_endpoint_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["https://hooks.example.com/in?token=abc", "https://93.184.216.34:8443/x"])
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_endpoint_url(f"  {url} ", allow_private=False) == url


def test_private_networks_allowed_for_development() -> None:
    assert check_endpoint_url("http://127.0.0.1:9000/hook", allow_private=True) == "http://127.0.0.1:9000/hook"
    with pytest.raises(UrlNotAllowed):  # credentials stay refused
        check_endpoint_url("http://a:b@127.0.0.1/hook", allow_private=True)


def test_types() -> None:
    assert parse_types(None) == list(outbox.EVENT_TYPES) == parse_types(" , ")
    assert parse_types("purchase.approved, job.completed") == ["job.completed", "purchase.approved"]
    assert parse_types(["credits.low", "credits.low"]) == ["credits.low"]
    with pytest.raises(TypesRefused, match=r"job\.exploded"):
        parse_types("job.completed,job.exploded")


async def test_add_refuses_private_urls_and_stores_nothing(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(allow_private_networks=False)
    async with database.session() as session:
        for url, code in (("https://10.1.2.3/hook", "address_not_allowed"), ("http://example.com/", "url_not_allowed")):
            with pytest.raises(svc.EndpointRefused) as refused:
                await svc.add_endpoint(session, settings, url)
            assert refused.value.code == code
    async with database.session() as session:
        assert await svc.list_endpoints(session) == []


def test_signing_secrets_during_and_after_the_overlap() -> None:
    now = utcnow()
    endpoint = WebhookEndpoint(url="https://x.example", secret="whsec_new", old_secret="whsec_old",
                               old_secret_until=now + timedelta(seconds=5))  # fmt: skip
    assert signing_secrets(endpoint, now) == ["whsec_new", "whsec_old"]
    assert signing_secrets(endpoint, now + timedelta(seconds=6)) == ["whsec_new"]
    assert signing_secrets(WebhookEndpoint(url="https://x.example", secret="whsec_only"), now) == ["whsec_only"]


# --- rotation, end to end -----------------------------------------------------------------------------------
async def test_rotation_overlap_old_and_new_secret_both_verify(
    database: Database, stack: StackFactory, receiver: Receiver
) -> None:
    async with stack(database, webhook_retry_schedule="0,0.2", webhook_secret_overlap_s=3600) as env:
        r = await env.client.post("/v1/admin/webhooks", json={"url": receiver.hook_url, "types": ["job.completed"]},
                                  headers=env.admin)  # fmt: skip
        first = r.json()
        old = first["secret"]
        receiver.secrets = [old]
        await env.wait_for(await env.submit(), "completed")
        [before] = await receiver.wait_for(1)
        assert before.verified_by == [True] and len(before.signatures) == 1

        r = await env.client.post(f"/v1/admin/webhooks/{first['id']}/rotate-secret", headers=env.admin)
        assert r.status_code == 200, r.text
        rotated = r.json()
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_") and rotated["old_secret_until"] is not None
        listed = (await env.client.get("/v1/admin/webhooks", headers=env.admin)).json()
        assert "secret" not in listed[0] and listed[0]["old_secret_until"] == rotated["old_secret_until"]

        receiver.secrets = [old, new]  # a receiver still on the old secret, and one already on the new
        await env.wait_for(await env.submit(), "completed")
        during = (await receiver.wait_for(2))[1]
        assert len(during.signatures) == 2 and during.verified_by == [True, True]

        # a rotation without overlap: only the newest secret signs, the two before it no longer verify
        r = await env.client.post(f"/v1/admin/webhooks/{first['id']}/rotate-secret", json={"overlap_s": 0},
                                  headers=env.admin)  # fmt: skip
        newest = r.json()["secret"]
        assert r.json()["old_secret_until"] is None
        receiver.secrets = [old, new, newest]
        await env.wait_for(await env.submit(), "completed")
        after = (await receiver.wait_for(3))[2]
        assert len(after.signatures) == 1 and after.verified_by == [False, False, True]


async def test_the_overlap_ends_on_time(database: Database, stack: StackFactory, receiver: Receiver) -> None:
    async with stack(database, webhook_retry_schedule="0,0.2") as env:
        r = await env.client.post("/v1/admin/webhooks", json={"url": receiver.hook_url, "types": ["job.completed"]},
                                  headers=env.admin)  # fmt: skip
        old = r.json()["secret"]
        r = await env.client.post(f"/v1/admin/webhooks/{r.json()['id']}/rotate-secret", json={"overlap_s": 1},
                                  headers=env.admin)  # fmt: skip
        receiver.secrets = [old, r.json()["secret"]]
        await asyncio.sleep(1.2)
        await env.wait_for(await env.submit(), "completed")
        [message] = await receiver.wait_for(1)
        assert message.verified_by == [False, True]


# --- the address rules at send time -------------------------------------------------------------------------
@pytest.fixture
async def one_message(
    plain_db: Database, receiver: Receiver
) -> AsyncIterator[tuple[Database, int, Callable[..., Any]]]:
    """An endpoint at `http://hooks.test:{port}/hook` (a name that now resolves to the receiver on 127.0.0.1, as
    if its DNS changed after it was added) with one due message."""
    port = receiver.url.rsplit(":", 1)[1]
    async with plain_db.session() as session:
        endpoint = WebhookEndpoint(url=f"http://hooks.test:{port}/hook", secret="whsec_" + "A" * 43 + "=",
                                   types=["job.completed"])  # fmt: skip
        session.add(endpoint)
        await session.flush()
        assert endpoint.id is not None
        endpoint_id = endpoint.id
    async with plain_db.session() as session:
        await outbox.publish(session, "job.completed", {"job_id": "j1", "result_url": None})

    def sender(settings: Settings, policy: AddressPolicy) -> WebhookSender:
        fetcher = SafeFetcher(allow_private=False, allow_http=True, address_policy=policy,
                              resolver=FakeDNS({"hooks.test": ["127.0.0.1"]}), timeout=2.0)  # fmt: skip
        return WebhookSender(plain_db, settings, None, fetcher=fetcher)

    yield plain_db, endpoint_id, sender


async def test_a_name_resolving_to_a_private_address_is_refused_when_sending(
    one_message: tuple[Database, int, Callable[..., Any]], receiver: Receiver, make_settings: Callable[..., Settings]
) -> None:
    db, endpoint_id, make_sender = one_message
    sender = make_sender(make_settings(allow_private_networks=False), AddressPolicy())
    try:
        assert await sender.run_due() == 1
    finally:
        await sender.fetcher.aclose()
    assert receiver.received == []  # refused before connecting
    async with db.session() as session:
        views = await svc.deliveries(session, endpoint_id)
    assert views[0]["state"] == "pending" and views[0]["history"][0]["status"] is None
    assert views[0]["history"][0]["error"].startswith("address_not_allowed")


async def test_the_same_message_is_sent_where_the_address_is_allowed(
    one_message: tuple[Database, int, Callable[..., Any]], receiver: Receiver, make_settings: Callable[..., Settings]
) -> None:
    """The control for the test above: only the address policy differs, and the message arrives."""
    db, endpoint_id, make_sender = one_message
    sender = make_sender(make_settings(allow_private_networks=False), AddressPolicy.allowing(["127.0.0.1/32"]))
    try:
        assert await sender.run_due() == 1
    finally:
        await sender.fetcher.aclose()
    assert len(receiver.received) == 1 and receiver.received[0].headers["webhook-id"].startswith("msg_")
    async with db.session() as session:
        assert (await svc.deliveries(session, endpoint_id))[0]["state"] == "delivered"
        count = (await session.execute(sa.select(sa.func.count()).select_from(WebhookEndpoint))).scalar_one()
    assert count == 1
