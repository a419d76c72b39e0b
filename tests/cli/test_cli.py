"""The `photobot` command line, run as real subprocesses against a migrated SQLite or PostgreSQL database.

Contract checked for every command: `--json` prints exactly one JSON document on stdout (nothing else), and
an error exits non-zero with exactly one line on stderr and nothing on stdout.

Speed: the environment sets PYTHONDONTWRITEBYTECODE, so each child would compile every imported module
again (~6 s a command). The children get a private bytecode cache (PYTHONPYCACHEPREFIX, outside the tree)
instead, and independent commands run concurrently. Every command's success path and the errors that
depend on stored data run on both backends; pure input validation (refused before any query) runs once,
on SQLite.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.migrate import head_revision
from photobot.db.models import ClientToken, CreditLedger, Event, Job, Notification, ProviderKey, Style, utcnow
from photobot.jobs import credits
from photobot.signing import hash_token
from tests.support.cli import Result, run_photobot

Run = Callable[..., Any]

pytestmark = pytest.mark.timeout(600)  # ~70 child processes; a loaded machine makes each one slow


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Run:
    """`await cli("events", "list", "--json")` runs `photobot` in a child process on the test database."""
    workdir = tmp_path / "cwd"  # no stray .env is read
    workdir.mkdir()

    async def run(*args: str, **extra_env: str) -> Result:
        return await run_photobot(db_url, workdir, *args, var_dir=tmp_path / "var", **extra_env)

    run.sqlite = db_url.startswith("sqlite")  # type: ignore[attr-defined]
    return run


async def _all(*runs: Any) -> list[Result]:
    return list(await asyncio.gather(*runs))


async def _scalar(url: str, query: Any) -> Any:
    db = Database(url)
    try:
        async with db.session() as session:
            return (await session.execute(query)).scalar()
    finally:
        await db.close()


async def _rows(url: str, query: Any) -> list[Any]:
    db = Database(url)
    try:
        async with db.session() as session:
            return list((await session.execute(query)).all())
    finally:
        await db.close()


async def _insert_event(db_url: str, name: str) -> int:
    db = Database(db_url)
    try:
        async with db.session() as session:
            event = Event(name=name)
            session.add(event)
            await session.flush()
            assert event.id is not None
            return event.id
    finally:
        await db.close()


async def test_migrate_and_bootstrap(cli: Run, db_url: str, tmp_path: Path) -> None:
    assert (await cli("migrate", "--json")).json() == {"revision": head_revision(), "status": "ok"}

    first = (await cli("bootstrap", "--json")).json()
    assert first["styles_loaded"] >= 8
    assert first["credits"] == 100
    assert first["token"].startswith("pbt_")
    event_id = first["event_id"]

    second = (await cli("bootstrap", "--json")).json()
    assert second == {**first, "styles_loaded": 0}  # idempotent: same event, same token, nothing reloaded

    assert await _scalar(db_url, sa.select(sa.func.count()).select_from(Event)) == 1
    assert await _scalar(db_url, sa.select(sa.func.count()).select_from(Style)) == first["styles_loaded"]
    assert await _scalar(db_url, sa.select(Event.credits).where(Event.id == event_id)) == 100
    stored = await _rows(db_url, sa.select(ClientToken.token_hash, ClientToken.scope, ClientToken.event_id))
    assert stored == [(hash_token(first["token"]), "event", event_id)]

    if not cli.sqlite:
        return
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    dead_pg = "postgresql+asyncpg://127.0.0.1:1/none"
    plain_migrate, plain_bootstrap, missing_table, unreachable, unreachable_migrate = await _all(
        cli("migrate"),
        cli("bootstrap"),
        cli("events", "list", "--json", PHOTOBOT_DATABASE_URL=empty),
        cli("events", "list", "--json", PHOTOBOT_DATABASE_URL=dead_pg),
        cli("migrate", "--json", PHOTOBOT_DATABASE_URL=dead_pg),
    )
    assert plain_migrate.ok().out == ""  # the human message goes to stderr
    assert first["token"] in plain_bootstrap.ok().out  # the demo token and how to use it
    assert "`photobot serve` prints a curl" in plain_bootstrap.out  # the job curl comes once the server listens
    assert "/v1/purchases" in plain_bootstrap.out and "demo-token.txt" in plain_bootstrap.out
    missing_table.failed("photobot migrate")
    unreachable.failed("ConnectionRefusedError")
    unreachable_migrate.failed("ConnectionRefusedError")


async def test_events_and_users(cli: Run, db_url: str) -> None:
    wedding = (await cli("events", "create", "Wedding", "--credits", "5", "--json")).json()
    assert wedding["name"] == "Wedding"
    assert wedding["credits"] == 5
    event_id = wedding["id"]

    alice, topped, unknown_event = await _all(
        cli("users", "create", "alice", "--credits", "2", "--json"),
        cli("events", "credits", str(event_id), "--add", "3", "--json"),
        cli("events", "credits", "999", "--add", "1", "--json"),
    )
    assert alice.json()["external_id"] == "alice"
    assert alice.json()["credits"] == 2
    assert topped.json()["id"] == event_id
    assert topped.json()["credits"] == 8
    assert topped.json()["granted_total"] == 8
    unknown_event.failed("event 999 not found")

    grants = await _rows(
        db_url,
        sa.select(CreditLedger.delta, CreditLedger.reason)
        .where(CreditLedger.event_id == event_id)
        .order_by(CreditLedger.id),
    )
    assert grants == [(5, "grant"), (3, "grant")]

    user_id = alice.json()["id"]
    listed_events, listed_users, user_topped, duplicate, *validation = await _all(
        cli("events", "list", "--json"),
        cli("users", "list", "--json"),
        cli("users", "credits", str(user_id), "--add", "4", "--json"),
        cli("users", "create", "alice", "--json"),
        *(
            (
                cli("events", "create", "Broke", "--credits", "-1", "--json"),
                cli("events", "credits", str(event_id), "--add", "0", "--json"),
                cli("events", "credits", str(event_id), "--add", "-2"),
                cli("users", "credits", str(user_id), "--add", "0"),
                cli("events", "list"),
            )
            if cli.sqlite
            else ()
        ),
    )
    assert [(e["id"], e["name"], e["credits"]) for e in listed_events.json()] == [(event_id, "Wedding", 8)]
    assert [u["external_id"] for u in listed_users.json()] == ["alice"]
    assert user_topped.json()["credits"] == 6
    duplicate.failed("already exists")
    if validation:
        validation[0].failed("credits must be 0 or more")
        validation[1].failed("--add")
        validation[2].failed("--add")
        validation[3].failed("--add")
        assert "Wedding" in validation[4].ok().out

    # the refused commands changed nothing
    assert await _rows(db_url, sa.select(Event.name, Event.credits).order_by(Event.id)) == [("Wedding", 8)]
    ledger = await _rows(db_url, sa.select(CreditLedger.reason, CreditLedger.delta).order_by(CreditLedger.id))
    assert sorted(ledger) == [("grant", 2), ("grant", 3), ("grant", 4), ("grant", 5)]


STYLES_JSON = [
    {"id": "neon", "name": "Neon", "prompt": "neon portrait", "cost": 2},
    {"id": "retro", "name": "Retro", "prompt": "1970s film look", "aspect_ratio": "3:4"},
]
STYLES_YAML = """\
- id: neon
  name: Neon Nights
  prompt: neon portrait, rain
- id: comic
  name: Comic
  prompt: comic book
  active: false
"""


async def test_styles_import_and_list(cli: Run, db_url: str, tmp_path: Path) -> None:
    as_json = tmp_path / "styles.json"
    as_json.write_text(json.dumps(STYLES_JSON))
    as_yaml = tmp_path / "more.yaml"
    as_yaml.write_text(STYLES_YAML)

    imported = (await cli("styles", "import", str(as_json), "--json")).json()
    assert [s["id"] for s in imported] == ["neon", "retro"]
    assert imported[0]["cost"] == 2

    upserted = (await cli("styles", "import", str(as_yaml), "--json")).json()
    assert [s["id"] for s in upserted] == ["neon", "comic"]

    bad_syntax = tmp_path / "broken.json"
    bad_syntax.write_text("[{")
    not_a_list = tmp_path / "single.yaml"
    not_a_list.write_text("id: x\nname: X\nprompt: p\n")
    bad_field = tmp_path / "bad.yaml"
    bad_field.write_text("- id: Bad Id!\n  name: x\n  prompt: p\n")
    listed, *others = await _all(
        cli("styles", "list", "--json"),
        *(
            (
                cli("styles", "list"),
                cli("styles", "import", str(bad_syntax), "--json"),
                cli("styles", "import", str(not_a_list)),
                cli("styles", "import", str(bad_field), "--json"),
                cli("styles", "import", str(tmp_path / "missing.yaml")),
            )
            if cli.sqlite
            else ()
        ),
    )
    by_id = {s["id"]: s for s in listed.json()}
    assert sorted(by_id) == ["comic", "neon", "retro"]
    assert by_id["neon"]["name"] == "Neon Nights"  # updated in place, by id
    assert by_id["neon"]["prompt"] == "neon portrait, rain"
    assert by_id["neon"]["cost"] == 1  # the YAML entry replaced the whole style
    assert by_id["comic"]["active"] is False
    assert by_id["retro"]["aspect_ratio"] == "3:4"
    if others:
        assert "Neon Nights" in others[0].ok().out
        others[1].failed("cannot parse broken.json")
        others[2].failed("list")
        others[3].failed("style id")
        others[4].failed("cannot read")
    assert await _scalar(db_url, sa.select(sa.func.count()).select_from(Style)) == 3


async def test_keys_and_tokens(cli: Run, db_url: str) -> None:
    secret = "kie-sk-0123456789abcdefSECRET9f3a"
    event_id = await _insert_event(db_url, "Booth")
    added = (await cli("keys", "add", "--provider", "kie", secret, "--label", "main", "--json")).ok()
    assert secret not in added.out
    assert secret[:-4] not in added.out
    key = json.loads(added.out)
    assert key["provider"] == "kie"
    assert key["label"] == "main"
    assert key["active"] is True
    assert key["secret"].endswith(secret[-4:])

    results = await _all(
        cli("keys", "list", "--json"),
        cli("keys", "disable", str(key["id"]), "--json"),
        cli("keys", "disable", "999", "--json"),
        cli("tokens", "create", "--event", str(event_id), "--label", "kiosk 1", "--json"),
        cli("tokens", "create", "--app", "--json"),
        cli("tokens", "create", "--admin", "--json"),
        cli("tokens", "create", "--event", "999", "--json"),
        *(
            (
                cli("keys", "add", "--provider", "kie", secret, "--json"),
                cli("keys", "add", "--provider", "kie", "short"),
                cli("keys", "list"),
                cli("tokens", "create", "--json"),
                cli("tokens", "create", "--app", "--admin", "--json"),
                cli("tokens", "create", "--event", str(event_id), "--app"),
                cli("tokens", "create", "--admin"),
            )
            if cli.sqlite
            else ()
        ),
    )
    listed, disabled, unknown_key, event_token, app_token, admin_token, unknown_event, *extra = results
    for result in results:
        assert secret not in result.out + result.err
        assert secret[:-4] not in result.out + result.err
    assert [k["id"] for k in listed.json()] == [key["id"]]
    assert disabled.json()["active"] is False
    assert disabled.json()["disabled_reason"]
    unknown_key.failed("key 999 not found")
    unknown_event.failed("event 999 not found")
    assert await _rows(db_url, sa.select(ProviderKey.secret, ProviderKey.active)) == [(secret, False)]
    enabled, unknown_enable = await _all(
        cli("keys", "enable", str(key["id"]), "--json"), cli("keys", "enable", "999", "--json")
    )
    assert enabled.json()["active"] is True and not enabled.json()["disabled_reason"]
    assert secret[:-4] not in enabled.out
    unknown_enable.failed("key 999 not found")
    assert await _rows(db_url, sa.select(ProviderKey.secret, ProviderKey.active)) == [(secret, True)]

    created = [event_token.json(), app_token.json(), admin_token.json()]
    assert [(t["scope"], t["event_id"]) for t in created] == [("event", event_id), ("app", None), ("admin", None)]
    assert created[0]["label"] == "kiosk 1"
    assert all("token_hash" not in t for t in created)
    tokens = [t["token"] for t in created]
    if extra:
        extra[0].failed("already in the pool")
        extra[1].failed("too short")
        assert "main" in extra[2].ok().out
        extra[3].failed("exactly one")
        extra[4].failed("exactly one")
        extra[5].failed("exactly one")
        text = extra[6].ok().out
        assert "shown once" in text
        tokens.append(next(word for word in text.split() if word.startswith("pbt_")))
    assert all(t.startswith("pbt_") for t in tokens)
    assert len(set(tokens)) == len(tokens)

    # only the hashes are stored; no column anywhere in the table holds a token itself
    stored = await _rows(db_url, sa.select(ClientToken.token_hash))
    assert sorted(h for (h,) in stored) == sorted(hash_token(t) for t in tokens)
    for token in tokens:
        for column in ClientToken.__table__.columns:  # type: ignore[attr-defined]
            if isinstance(column.type, sa.String):
                assert await _scalar(db_url, sa.select(sa.func.count()).where(column == token)) == 0

    revoked, unknown_token, token_list = await _all(
        cli("tokens", "revoke", str(created[1]["id"]), "--json"),
        cli("tokens", "revoke", "999", "--json"),
        cli("tokens", "list", "--json"),
    )
    assert revoked.json()["revoked_at"]
    assert "token" not in revoked.json()
    unknown_token.failed("token 999 not found")
    assert all(t not in token_list.ok().out for t in tokens)
    assert len(token_list.json()) == len(tokens)
    revoked_at = await _scalar(db_url, sa.select(ClientToken.revoked_at).where(ClientToken.id == created[1]["id"]))
    assert revoked_at is not None


async def _insert_job(db_url: str, event_id: int) -> str:
    db = Database(db_url)
    try:
        async with db.session() as session:
            await credits.grant(session, event_id=event_id, amount=3)
            job = Job(
                event_id=event_id,
                style_id="pb_a",
                provider="kie",
                model="nano-banana-pro",
                prompt="a prompt",
                input_key="inputs/x.jpg",
                request_hash="f" * 64,
                deadline_at=utcnow() + timedelta(minutes=5),
            )
            session.add(job)
            await session.flush()
            await credits.reserve(session, job)
            return job.id
    finally:
        await db.close()


async def test_jobs_list_and_show(cli: Run, db_url: str) -> None:
    event_id = await _insert_event(db_url, "Jobs")
    other = await _insert_event(db_url, "Empty")
    job_id = await _insert_job(db_url, event_id)
    push = "ntfy://tk_secretpushtoken@ntfy.example/booth"
    db = Database(db_url)
    try:
        async with db.session() as session:
            session.add(Notification(job_id=job_id, channel="push:0", target=push, state="failed", attempts=5,
                                     last_error="HTTP 500"))  # fmt: skip
    finally:
        await db.close()

    everything, filtered, for_other, shown, unknown, *extra = await _all(
        cli("jobs", "list", "--json"),
        cli("jobs", "list", "--event", str(event_id), "--state", "pending", "--json"),
        cli("jobs", "list", "--event", str(other), "--json"),
        cli("jobs", "show", job_id, "--json"),
        cli("jobs", "show", "nope", "--json"),
        *(
            (
                cli("jobs", "list", "--state", "bogus", "--json"),
                cli("jobs", "list", "--state", "processing", "--json"),
                cli("jobs", "list"),
                cli("jobs", "show", job_id),
            )
            if cli.sqlite
            else ()
        ),
    )
    assert [j["id"] for j in everything.json()] == [job_id]
    assert [(j["id"], j["state"]) for j in filtered.json()] == [(job_id, "pending")]
    assert for_other.json() == []
    job = shown.json()
    assert (job["id"], job["event_id"], job["state"], job["transitions"]) == (job_id, event_id, "pending", [])
    assert [(r["reason"], r["delta"]) for r in job["ledger"]] == [("reserve", -1)]
    assert [(n["channel"], n["state"], n["target"]) for n in job["notifications"]] == [("push:0", "failed", "ntfy://…")]
    assert "request_hash" not in job and "tk_secret" not in shown.out
    unknown.failed("job nope not found")
    if extra:
        extra[0].failed("unknown state 'bogus'")
        assert extra[1].json() == []
        assert job_id in extra[2].ok().out
        text = extra[3].ok().out
        assert text.startswith(f"job {job_id}  pending") and "tk_secret" not in text
        for line in (
            "transitions:\n  (none)",
            "ledger:\n",
            "reserve  -1  event",
            "push:0     ready  failed   ntfy://…",
        ):
            assert line in text, text


async def _guest_job(db_url: str, media: Path, event_id: int, email: str | None, state: str = "completed") -> str:
    """A finished job (cost 0) with its photos on local storage and an unsent notification."""
    db = Database(db_url)
    try:
        async with db.session() as session:
            now = utcnow()
            job = Job(event_id=event_id, style_id="pb_a", cost=0, provider="kie", model="m", prompt="p",
                      input_key="", state=state, deadline_at=now + timedelta(minutes=5), email=email,
                      phone="+628123456789" if email else None, guest_id="g-9" if email else None,
                      completed_at=now, updated_at=now)  # fmt: skip
            job.input_key = f"inputs/{job.id}.jpg"
            job.result_key = f"results/{job.id}.png" if state == "completed" else None
            for key in (job.input_key, job.result_key, f"thumbs/{job.id}.jpg"):
                if key:
                    (media / key).parent.mkdir(parents=True, exist_ok=True)
                    (media / key).write_bytes(b"photo")
            session.add(job)
            if email:
                session.add(Notification(job_id=job.id, channel="email", target=email, next_attempt_at=now))
            return job.id
    finally:
        await db.close()


async def test_guest_privacy_commands(cli: Run, db_url: str, tmp_path: Path) -> None:
    media = tmp_path / "var" / "media"
    event_id = (await cli("events", "create", "Private party", "--json")).json()["id"]
    updated = (
        await cli(
            "events", "update", str(event_id), "--consent-required", "--consent-text", "I agree.",
            "--moderation", "approve", "--max-photos-per-guest", "3", "--retention-days", "10", "--json",
        )
    ).json()  # fmt: skip
    assert (updated["consent_required"], updated["consent_text"], updated["moderation"]) == (
        True,
        "I agree.",
        "approve",
    )
    assert (updated["max_photos_per_guest"], updated["retention_days"]) == (3, 10)
    cleared = (await cli("events", "update", str(event_id), "--max-photos-per-guest", "none", "--json")).json()
    assert cleared["max_photos_per_guest"] is None and cleared["retention_days"] == 10

    ana = await _guest_job(db_url, media, event_id, "ana@example.com")
    ana_failed = await _guest_job(db_url, media, event_id, "ANA@example.com", state="failed")
    bob = await _guest_job(db_url, media, event_id, "bob@example.com")
    approved, hidden, exported, *refused = await _all(
        cli("jobs", "approve", ana, "--json"),
        cli("jobs", "hide", bob, "--json"),
        cli("guests", "export", "--event", str(event_id), "--email", "ana@EXAMPLE.com"),
        cli("jobs", "approve", ana_failed, "--json"),
        cli("jobs", "hide", "0" * 32),
        cli("guests", "forget", "--event", str(event_id), "--json"),
        cli("guests", "forget", "--event", str(event_id), "--email", "a@b.c", "--guest-id", "g", "--json"),
        cli("guests", "forget", "--event", "99999", "--email", "a@b.c", "--json"),
        cli("events", "purge", str(event_id)),
        cli("events", "update", str(event_id), "--retention-days", "0"),
        cli("events", "update", str(event_id)),
    )
    assert approved.json()["approved_at"] and hidden.json()["hidden_at"]
    data = exported.json()
    assert sorted(j["job"]["id"] for j in data["jobs"]) == sorted([ana, ana_failed])
    assert {n["target"] for j in data["jobs"] for n in j["notifications"]} == {"ana@example.com", "ANA@example.com"}
    refused[0].failed("only completed photos can be approved")
    refused[1].failed("not found")
    refused[2].failed("exactly one of --email, --phone or --guest-id")
    refused[3].failed("exactly one of --email, --phone or --guest-id")
    refused[4].failed("event 99999 not found")
    refused[5].failed("--yes")
    refused[6].failed("retention_days must be 1 to 3650")
    refused[7].failed("nothing to change")

    forgotten = (
        await cli("guests", "forget", "--event", str(event_id), "--phone", "+62 812 3456 789", "--json")
    ).json()
    assert sorted(forgotten["job_ids"]) == sorted([ana, ana_failed, bob])  # all three share the phone number
    assert forgotten["files_deleted"] == 8 and forgotten["notifications_cancelled"] == 3
    assert not [p for p in media.rglob("*") if p.is_file() and p.name.split(".")[0] in (ana, ana_failed, bob)]
    rows = await _rows(db_url, sa.select(Job.email, Job.phone, Job.guest_id, Job.forgotten_at))
    assert rows and all(r[:3] == (None, None, None) and r[3] is not None for r in rows)
    targets = await _rows(db_url, sa.select(Notification.target, Notification.state))
    assert targets == [("", "cancelled")] * 3
    text = (await cli("guests", "forget", "--event", str(event_id), "--phone", "+628123456789")).ok().out
    assert "0 jobs anonymised" in text

    other = await _guest_job(db_url, media, event_id, None)
    purged = (await cli("events", "purge", str(event_id), "--yes", "--json")).json()
    assert (purged["jobs"], purged["files_deleted"]) == (4, 3)  # only the new job still had photos
    assert not [p for p in media.rglob("*") if p.is_file() and other in p.name]


async def test_style_previews_and_event_styles(cli: Run, db_url: str, tmp_path: Path) -> None:
    """Bootstrap stores the shipped previews; a style file names its own (relative to the file); a text-to-image
    style that could never work is refused at import; `events update --styles` sets an event's picker."""
    from PIL import Image

    media = tmp_path / "var" / "media"
    boot = (await cli("bootstrap", "--json")).json()
    shipped = await _rows(db_url, sa.select(Style.id, Style.preview_key).order_by(Style.id))
    assert len(shipped) == boot["styles_loaded"] and all(key == f"styles/{sid}/preview.jpg" for sid, key in shipped)
    assert all((media / key).is_file() for _, key in shipped)

    folder = tmp_path / "catalogue"
    (folder / "img").mkdir(parents=True)
    Image.new("RGB", (200, 150), (200, 40, 90)).save(folder / "img" / "castle.png")
    (folder / "not-an-image.png").write_bytes(b"hello")
    good = folder / "mine.yaml"
    good.write_text(
        "- id: castle\n  name: Castle\n  prompt: a castle at dawn\n  model: google/nano-banana\n"
        "  preview: img/castle.png\n"
    )
    imported = (await cli("styles", "import", str(good), "--json")).json()
    assert imported[0]["preview_key"] == "styles/castle/preview.png"
    assert (media / "styles" / "castle" / "preview.png").read_bytes() == (folder / "img" / "castle.png").read_bytes()

    refusals = {
        "refs.yaml": ("- id: t2i\n  name: T\n  prompt: p\n  model: google/nano-banana\n"
                      "  reference_keys: [styles/x.png]\n",
                      "style t2i: google/nano-banana makes images from the prompt alone"),
        "model.yaml": ("- id: t\n  name: T\n  prompt: p\n  model: dall-e-3\n",
                       "style t: model: unknown model 'dall-e-3'"),
        "ratio.yaml": ('- id: t\n  name: T\n  prompt: p\n  aspect_ratio: "7:3"\n', "aspect_ratio: '7:3' is not one of"),
        "nopic.yaml": ("- id: t\n  name: T\n  prompt: p\n  preview: missing.jpg\n", "cannot read preview"),
        "badpic.yaml": ("- id: t\n  name: T\n  prompt: p\n  preview: not-an-image.png\n", "preview not-an-image.png"),
    }  # fmt: skip
    for name, (text, _) in refusals.items():
        (folder / name).write_text(text)
    events = (await cli("events", "list", "--json")).json()
    event_id = events[0]["id"]
    results = await _all(
        *(cli("styles", "import", str(folder / name), "--json") for name in refusals),
        cli("events", "update", str(event_id), "--styles", "pb_c, castle,pb_a", "--json"),
        cli("events", "update", str(event_id), "--styles", "pb_a,nope"),
        cli("events", "update", str(event_id), "--styles", "pb_a,pb_a"),
        cli("events", "update", str(event_id)),
        cli("events", "update", "999", "--styles", "pb_a"),
    )
    for result, (_, fragment) in zip(results, refusals.values(), strict=False):
        result.failed(fragment)
    updated, unknown, twice, nothing, missing = results[len(refusals) :]
    assert updated.json()["styles"] == ["pb_c", "castle", "pb_a"]
    unknown.failed("no such style: nope")
    twice.failed("pb_a is listed twice")
    nothing.failed("nothing to change")
    missing.failed("event 999 not found")
    assert await _scalar(db_url, sa.select(sa.func.count()).select_from(Style)) == len(shipped) + 1
    assert await _scalar(db_url, sa.select(Event.styles).where(Event.id == event_id)) == ["pb_c", "castle", "pb_a"]
    cleared = (await cli("events", "update", str(event_id), "--styles", "", "--json")).json()
    assert cleared["styles"] == []
