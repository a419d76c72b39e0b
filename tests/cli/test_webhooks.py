"""`photobot webhooks add|list|disable|enable|rotate-secret|deliveries|replay`, run as real child processes on SQLite
and PostgreSQL: `--json` prints one JSON document, an error exits non-zero with one line on stderr."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from photobot.db import Database
from photobot.outbound import outbox
from photobot.services import accounts
from tests.support.cli import failed, ok
from tests.support.cli import run_photobot as photobot

pytestmark = pytest.mark.timeout(300)


async def test_webhooks_commands(database: Database, tmp_path: Path) -> None:
    url = database.url
    async with database.session() as session:
        event = await accounts.create_event(session, "Gala", 0)
    added = ok(await photobot(url, tmp_path, "webhooks", "add", "https://hooks.example.com/in?k=1", "--event",
                              str(event.id), "--types", "job.completed,credits.low", "--json"))  # fmt: skip
    secret = added.pop("secret")
    assert secret.startswith("whsec_")
    assert added["url"] == "https://hooks.example.com/in?k=1" and added["types"] == ["job.completed", "credits.low"]
    assert (added["event_id"], added["active"]) == (event.id, True)
    everyone = ok(await photobot(url, tmp_path, "webhooks", "add", "https://crm.example.org/photobot", "--json"))
    assert everyone["types"] == list(outbox.EVENT_TYPES) and everyone["event_id"] is None

    listed = ok(await photobot(url, tmp_path, "webhooks", "list", "--json"))
    assert [e["id"] for e in listed] == [added["id"], everyone["id"]]
    assert all("secret" not in e for e in listed) and secret not in json.dumps(listed)

    rotated, disabled = await asyncio.gather(
        photobot(url, tmp_path, "webhooks", "rotate-secret", str(added["id"]), "--overlap", "600", "--json"),
        photobot(url, tmp_path, "webhooks", "disable", str(everyone["id"]), "--json"),
    )
    rotated_view = ok(rotated)
    assert rotated_view["secret"] != secret and rotated_view["old_secret_until"] is not None
    assert ok(disabled)["active"] is False
    assert ok(await photobot(url, tmp_path, "webhooks", "enable", str(everyone["id"]), "--json"))["active"] is True

    async with database.session() as session:
        message_id = await outbox.publish(session, "job.completed", {"job_id": "j1"}, event_id=event.id)
    delivered = ok(await photobot(url, tmp_path, "webhooks", "deliveries", str(added["id"]), "--json"))
    assert [(d["message_id"], d["type"], d["state"], d["attempts"]) for d in delivered] == [
        (message_id, "job.completed", "pending", 0)
    ]
    replayed = ok(await photobot(url, tmp_path, "webhooks", "replay", str(message_id), "--json"))
    assert sorted(v["endpoint_id"] for v in replayed) == [added["id"], everyone["id"]]

    # human output: one line per endpoint, the secret only where it is new
    out = (await photobot(url, tmp_path, "webhooks", "list")).ok().out
    assert len(out.strip().splitlines()) == 2 and "whsec_" not in out


async def test_webhooks_refusals(database: Database, tmp_path: Path) -> None:
    url = database.url
    results = await asyncio.gather(
        photobot(url, tmp_path, "webhooks", "add", "https://10.0.0.8/hook", "--json"),
        photobot(url, tmp_path, "webhooks", "add", "http://hooks.example.com/hook", "--json"),
        photobot(url, tmp_path, "webhooks", "add", "https://hooks.example.com/", "--types", "job.exploded", "--json"),
        photobot(url, tmp_path, "webhooks", "add", "https://hooks.example.com/", "--event", "999", "--json"),
        photobot(url, tmp_path, "webhooks", "disable", "999", "--json"),
        photobot(url, tmp_path, "webhooks", "rotate-secret", "999", "--json"),
        photobot(url, tmp_path, "webhooks", "deliveries", "999", "--json"),
        photobot(url, tmp_path, "webhooks", "replay", "msg_missing", "--json"),
    )
    fragments = ["is not a public address", "scheme 'http' is not allowed", "unknown message types job.exploded",
                 "event 999 not found", "webhook endpoint 999 not found", "webhook endpoint 999 not found",
                 "webhook endpoint 999 not found", "webhook message msg_missing not found"]  # fmt: skip
    for result, fragment in zip(results, fragments, strict=True):
        failed(result, fragment)
    assert ok(await photobot(url, tmp_path, "webhooks", "list", "--json")) == []
    # with private networks allowed (development), a loopback receiver is fine
    local = ok(await photobot(url, tmp_path, "webhooks", "add", "http://127.0.0.1:9/hook", "--json",
                              PHOTOBOT_ALLOW_PRIVATE_NETWORKS="true"))  # fmt: skip
    assert local["url"] == "http://127.0.0.1:9/hook"
