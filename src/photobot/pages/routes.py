"""Guest pages, the event gallery and the reference kiosk (HTML), with their live-update streams and QR codes.

    GET /p/{public_id}             the guest's page: progress → photo with download/share | failure; 404; 410
    GET /p/{public_id}.json        the same state as JSON, for polling (ETag → 304, Retry-After while in flight)
    GET /p/{public_id}/events      Server-Sent Events: one `state` message per change, closed when final
    GET /p/{public_id}/qr.png|svg  QR code of the page URL, for the kiosk screen
    GET /e/{event_id}/gallery?sig= the event's shown photos, newest first, paginated (&wall=1: live wall)
    GET /e/{event_id}/gallery/events?sig=   SSE: `photo` messages as photos appear, `remove` as they go (live wall)
    GET /e/{event_id}/thumbs/{job_id}.jpg?sig=  a gallery thumbnail (made once, then reused)
    GET /kiosk                     the reference kiosk (camera, styles, submit, QR, live status)
    GET /v1/styles                 active styles (id, name) for a client token (photobot/api/styles.py)

Live updates travel over `runtime.bus`: the engine publishes `photobot:job:{public_id}` on every change, so a
page open on any web process hears it (Redis pub/sub, or in-process without Redis). The bus only says "look
again": every message is answered by re-reading the job from the database, which stays the truth, and the
streams also re-read on a timer, so a lost message costs seconds, never a stuck page.

What the gallery shows (`_gallery_query`): completed, kept photos of the event that no operator hid — and, when the
event's moderation is `approve`, only approved ones. A photo "appears" at `coalesce(approved_at, completed_at)`,
which orders the gallery and moves the wall's cursor; it "goes" when hidden, forgotten or purged (`hidden_at` /
`purged_at`), and the wall removes it without a reload. The guest's own page always shows their photo.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import segno
import sqlalchemy as sa
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from photobot.api import styles as styles_api
from photobot.api.views import RETRY_AFTER_S
from photobot.api.views import etag as job_etag
from photobot.bus import EVENT_CHANNEL_PREFIX, JOB_CHANNEL_PREFIX
from photobot.db.models import Event, Job, JobState, Moderation, utcnow
from photobot.jobs import lookup
from photobot.jobs.retention import is_expired, retention_days
from photobot.links import page_url
from photobot.pages import sse
from photobot.pages.render import STATIC_DIR, STATIC_PREFIX, Branding, render, strings_for
from photobot.pages.thumbs import ensure_thumbnail
from photobot.problems import Problem, not_found
from photobot.runtime import Runtime
from photobot.storage.base import StorageError
from photobot.web import context

_PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
PAGE_SIZE = 24
MAX_PAGE_SIZE = 60
WALL_SIZE = 100  # the live wall shows the newest 100 photos
WALL_AREA = (1920, 1000)  # the wall's photo area on a 1080p screen, for the first paint (gallery.js refines it)
WALL_POLL_S = 2.0  # the live wall re-reads the database this often, whether or not a bus message came
JOB_RECHECK_S = 10.0  # a guest stream re-reads its job this often without a bus message


def _runtime(request: Request) -> Runtime:
    return context.runtime(request)


async def _find(runtime: Runtime, public_id: str) -> tuple[Job, Event | None] | None:
    if not _PUBLIC_ID.match(public_id):
        return None
    return await lookup.job_with_event(runtime.db, public_id)


def _not_found_page(brand: Branding | None = None) -> Response:
    brand = brand or Branding.of(None)
    t = strings_for(brand.lang)
    return render("message.html", 404, brand=brand, heading=t["not_found_title"], text=t["not_found_text"])


def _expired_page(runtime: Runtime, brand: Branding, job: Job, event: Event | None) -> Response:
    t = strings_for(brand.lang)
    if job.forgotten_at is not None:
        return render("message.html", 410, brand=brand, heading=t["forgotten_title"], text=t["forgotten_text"])
    text = t["expired_text"].format(days=retention_days(runtime.settings, event))
    return render("message.html", 410, brand=brand, heading=t["expired_title"], text=text)


def _gone() -> Problem:
    return Problem(410, "expired", "Gone", "This photo has expired or was deleted.")


# --- the job as the page sees it -----------------------------------------------------------------
async def job_state(runtime: Runtime, job: Job) -> dict[str, Any]:
    """What the guest page shows (JSON fallback and SSE messages): never internal error details."""
    status = JobState(job.state).public
    data: dict[str, Any] = {"status": status, "updated_at": job.updated_at.isoformat()}
    if status == "completed" and job.result_key:
        ttl = runtime.settings.signed_url_ttl_s
        ext = job.result_key.rsplit(".", 1)[-1]
        data["result_url"] = await runtime.storage.url(job.result_key, ttl)
        data["download_url"] = await runtime.storage.url(
            job.result_key, ttl, filename=f"photobot-{job.public_id[:8]}.{ext}"
        )
        data["completed_at"] = job.completed_at.isoformat() if job.completed_at else None
    elif status == "failed":
        data["error"] = {"code": job.error_code or "failed"}
    return data


def state_etag(runtime: Runtime, job: Job) -> str:
    """The job's ETag, plus a time bucket so a cached body never outlives its signed photo links."""
    bucket = int(time.time() // max(60, runtime.settings.signed_url_ttl_s // 2))
    basis = f"{job_etag(job)}|{job.purged_at is not None}|{bucket}"
    return '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


# --- guest page ----------------------------------------------------------------------------------
async def guest_page(request: Request) -> Response:
    runtime = _runtime(request)
    public_id = request.path_params["public_id"]
    found = await _find(runtime, public_id)
    if found is None:
        return _not_found_page()
    job, event = found
    brand = Branding.of(event)
    if is_expired(runtime, job, event=event):
        return _expired_page(runtime, brand, job, event)
    state = await job_state(runtime, job)
    t = strings_for(brand.lang)
    share_title = brand.title or t["your_photo"]
    return render(
        "guest.html",
        brand=brand,
        job=state,
        public_id=public_id,
        page_url=page_url(runtime.settings.public_base_url, public_id),
        share_text=t["share_text"].format(title=share_title),
        kept_for=t["kept_for"].format(days=retention_days(runtime.settings, event)),
        retry_after=RETRY_AFTER_S,
        headers={"Cache-Control": "no-cache"},
    )


async def guest_json(request: Request) -> Response:
    runtime = _runtime(request)
    found = await _find(runtime, request.path_params["public_id"])
    if found is None:
        raise not_found("No such photo.")
    job, event = found
    if is_expired(runtime, job, event=event):
        raise _gone()
    tag = state_etag(runtime, job)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if not job.job_state.final:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return JSONResponse(await job_state(runtime, job), headers=headers)


async def guest_events(request: Request) -> Response:
    runtime = _runtime(request)
    public_id = request.path_params["public_id"]
    found = await _find(runtime, public_id)
    if found is None:
        raise not_found("No such photo.")
    if is_expired(runtime, found[0], event=found[1]):
        raise _gone()

    async def body() -> AsyncIterator[str]:
        # Subscribe first, then read: a change between the two is seen either way.
        async with runtime.bus.subscribe(JOB_CHANNEL_PREFIX + public_id) as queue:
            yield sse.preamble()
            loop = asyncio.get_running_loop()
            end = loop.time() + sse.MAX_STREAM_S
            last_tag, idle = None, 0.0
            while loop.time() < end:
                again = await _find(runtime, public_id)
                if again is None or is_expired(runtime, again[0], event=again[1]):
                    yield sse.message("gone", {"status": "expired"})
                    return
                job = again[0]
                tag = job_etag(job)
                if tag != last_tag:
                    yield sse.message("state", await job_state(runtime, job), id=tag.strip('"'))
                    last_tag, idle = tag, 0.0
                if job.job_state.final:
                    return
                got = await sse.next_message(queue, JOB_RECHECK_S)
                if got is None:
                    idle += JOB_RECHECK_S
                    if idle >= sse.KEEPALIVE_S:
                        yield sse.comment()
                        idle = 0.0

    return sse.stream(body())


# --- QR codes --------------------------------------------------------------------------------------
async def _qr(request: Request) -> segno.QRCode:
    runtime = _runtime(request)
    public_id = request.path_params["public_id"]
    found = await _find(runtime, public_id)
    if found is None:
        raise not_found("No such photo.")
    if is_expired(runtime, found[0], event=found[1]):
        raise _gone()
    return segno.make(page_url(runtime.settings.public_base_url, public_id), error="m", micro=False)


QR_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


async def qr_png(request: Request) -> Response:
    qr = await _qr(request)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=10, border=4)
    return Response(buf.getvalue(), media_type="image/png", headers=QR_HEADERS)


async def qr_svg(request: Request) -> Response:
    qr = await _qr(request)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=10, border=4, xmldecl=False, title="QR code: your photo's page")
    return Response(buf.getvalue(), media_type="image/svg+xml", headers=QR_HEADERS)


# --- event gallery -----------------------------------------------------------------------------------
def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    return max(low, min(high, number))


async def _gallery_event(request: Request) -> tuple[Runtime, Event | None, str | None]:
    """The event when the link's signature is good; (runtime, None, None) when it is not (403)."""
    runtime = _runtime(request)
    event_id = request.path_params["event_id"]
    sig = request.query_params.get("sig")
    if not runtime.gallery_signer.verify(event_id, sig):
        return runtime, None, None
    async with runtime.db.session() as session:
        event = await session.get(Event, event_id)
    return runtime, event, sig


def _forbidden_page() -> Response:
    t = strings_for("en")
    return render("message.html", 403, heading=t["forbidden_title"], text=t["forbidden_text"])


def _shown_at() -> sa.ColumnElement[datetime]:
    """When a photo appeared in the gallery: its approval (moderated events, or a hidden photo shown again), else
    its completion."""
    return sa.func.coalesce(col(Job.approved_at), col(Job.completed_at))


def _gallery_query(runtime: Runtime, event: Event) -> Any:
    """The photos the event's gallery and live wall show (see the module docstring)."""
    fresh_after = utcnow() - timedelta(days=retention_days(runtime.settings, event))
    query = sa.select(Job).where(
        col(Job.event_id) == event.id,
        col(Job.state) == JobState.completed.value,
        col(Job.purged_at).is_(None),
        col(Job.hidden_at).is_(None),
        col(Job.result_key).is_not(None),
        col(Job.completed_at) > fresh_after,
    )
    if event.moderation == Moderation.approve:
        query = query.where(col(Job.approved_at).is_not(None))
    return query


def wall_shape(count: int, width: float, height: float) -> tuple[int, int]:
    """(columns, rows) of the live wall's grid for `count` photos in a `width` x `height` area: the layout that
    shows a square photo largest when each tile holds it whole, with no empty row. gallery.js does the same for
    the screen it runs on."""
    best, shape = -1.0, (1, 1)
    for cols in range(1, max(count, 1) + 1):
        rows = -(-max(count, 1) // cols)
        if (rows - 1) * cols >= max(count, 1):
            continue
        side = min(width / cols, height / rows)
        if side > best:
            best, shape = side, (cols, rows)
    return shape


def _photo(job: Job, event_id: int, sig: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "thumb_url": f"/e/{event_id}/thumbs/{job.id}.jpg?sig={sig}",
        "page_url": f"/p/{job.public_id}",
        "completed_at": job.completed_at.isoformat() if job.completed_at else None,
    }


async def gallery(request: Request) -> Response:
    runtime, event, sig = await _gallery_event(request)
    if sig is None:
        return _forbidden_page()
    if event is None or event.id is None:
        return _not_found_page()
    wall = request.query_params.get("wall") in ("1", "true", "yes")
    page = 1 if wall else _int(request.query_params.get("page"), 1, 1, 100_000)
    per = WALL_SIZE if wall else _int(request.query_params.get("per"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
    query = (
        _gallery_query(runtime, event)
        .order_by(_shown_at().desc(), col(Job.id).desc())
        .offset((page - 1) * per)
        .limit(per + 1)
    )
    async with runtime.db.session() as session:
        jobs = list((await session.execute(query)).scalars())
    has_next = len(jobs) > per
    jobs = jobs[:per]
    base = f"/e/{event.id}/gallery?sig={sig}" + (f"&per={per}" if per != PAGE_SIZE else "")
    newest = (jobs[0].approved_at or jobs[0].completed_at) if page == 1 and jobs else None
    newest = newest or utcnow()
    return render(
        "gallery.html",
        brand=Branding.of(event),
        photos=[_photo(j, event.id, sig) for j in jobs],
        first_number=(page - 1) * per + 1,
        page=page,
        prev_url=(f"{base}&page={page - 1}" if page > 1 else None),
        next_url=(f"{base}&page={page + 1}" if has_next else None),
        wall=wall,
        wall_shape=wall_shape(len(jobs), *WALL_AREA),
        wall_size=WALL_SIZE,
        wall_url=f"/e/{event.id}/gallery?sig={sig}&wall=1",
        events_url=f"/e/{event.id}/gallery/events?sig={sig}",
        since=newest.isoformat(),
        headers={"Cache-Control": "no-cache"},
    )


async def gallery_thumb(request: Request) -> Response:
    runtime, event, sig = await _gallery_event(request)
    if sig is None:
        raise Problem(403, "bad_signature", "Forbidden", "The gallery link is invalid or has expired.")
    job_id = request.path_params["job_id"]
    if event is None or not _JOB_ID.match(job_id):
        raise not_found()
    async with runtime.db.session() as session:
        job = (await session.execute(_gallery_query(runtime, event).where(col(Job.id) == job_id))).scalar_one_or_none()
    if job is None:
        raise not_found()
    try:
        key = await ensure_thumbnail(runtime.storage, job, runtime.settings.var_dir / "tmp")
        first = runtime.storage.iter_chunks(key)
    except (StorageError, OSError) as exc:
        raise not_found("The photo is not available.") from exc
    return StreamingResponse(
        first,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


async def gallery_events(request: Request) -> Response:
    runtime, event, sig = await _gallery_event(request)
    if sig is None:
        raise Problem(403, "bad_signature", "Forbidden", "The gallery link is invalid or has expired.")
    if event is None or event.id is None:
        raise not_found()
    event_id = event.id
    since_raw = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    try:
        cursor = datetime.fromisoformat(since_raw) if since_raw else utcnow()
    except ValueError:
        cursor = utcnow()
    if cursor.tzinfo is None:
        cursor = cursor.replace(tzinfo=UTC)

    async def body() -> AsyncIterator[str]:
        nonlocal cursor
        sent: set[str] = set()
        gone_after = cursor  # photos hidden, forgotten or purged after this are removed from the wall
        async with runtime.bus.subscribe(EVENT_CHANNEL_PREFIX + str(event_id)) as queue:
            yield sse.preamble()
            loop = asyncio.get_running_loop()
            end = loop.time() + sse.MAX_STREAM_S
            quiet = 0.0
            while loop.time() < end:
                async with runtime.db.session() as session:
                    current = await session.get(Event, event_id)  # moderation may change while the wall is up
                    if current is None:
                        return
                    query = (
                        _gallery_query(runtime, current)
                        .where(_shown_at() > cursor)
                        .order_by(_shown_at(), col(Job.id))
                        .limit(50)
                    )
                    jobs = [j for j in (await session.execute(query)).scalars() if j.id not in sent]
                    gone = (
                        await session.execute(
                            sa.select(col(Job.id), col(Job.hidden_at), col(Job.purged_at)).where(
                                col(Job.event_id) == event_id,
                                sa.or_(col(Job.hidden_at) > gone_after, col(Job.purged_at) > gone_after),
                            )
                        )
                    ).all()
                for job_id, hidden_at, purged_at in gone:
                    gone_after = max(gone_after, *(t for t in (hidden_at, purged_at) if t is not None))
                    sent.discard(job_id)  # shown again (approved) later: sent again
                    yield sse.message("remove", {"id": job_id})  # no `id:`: the resume cursor stays on photos
                    quiet = 0.0
                for job in jobs:
                    try:  # make the thumbnail now, so every wall shows it at once
                        await ensure_thumbnail(runtime.storage, job, runtime.settings.var_dir / "tmp")
                    except (StorageError, OSError):
                        continue
                    shown_at = job.approved_at or job.completed_at
                    assert shown_at is not None
                    cursor = max(cursor, shown_at)
                    sent.add(job.id)
                    yield sse.message("photo", _photo(job, event_id, sig), id=shown_at.isoformat())
                    quiet = 0.0
                if len(sent) > 1000:
                    sent.clear()
                if await sse.next_message(queue, WALL_POLL_S) is None:
                    quiet += WALL_POLL_S
                    if quiet >= sse.KEEPALIVE_S:
                        yield sse.comment()
                        quiet = 0.0

    return sse.stream(body())


async def kiosk(request: Request) -> Response:
    return render("kiosk.html", headers={"Permissions-Policy": "camera=(self)", "Cache-Control": "no-cache"})


# --- static files ------------------------------------------------------------------------------------
class _CachedStatic:
    """Static files; versioned URLs (`?v=` content hash) may be cached for a year."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=STATIC_DIR)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        versioned = b"v=" in scope.get("query_string", b"")

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                value = b"public, max-age=31536000, immutable" if versioned else b"public, max-age=300"
                message["headers"] = [*message.get("headers", []), (b"cache-control", value)]
            await send(message)

        await self.files(scope, receive, send_with_cache)


routes: list[BaseRoute] = [
    Route("/p/{public_id}.json", guest_json, methods=["GET"]),
    Route("/p/{public_id}/events", guest_events, methods=["GET"]),
    Route("/p/{public_id}/qr.png", qr_png, methods=["GET"]),
    Route("/p/{public_id}/qr.svg", qr_svg, methods=["GET"]),
    Route("/p/{public_id}", guest_page, methods=["GET"]),
    Route("/e/{event_id:int}/gallery", gallery, methods=["GET"]),
    Route("/e/{event_id:int}/gallery/events", gallery_events, methods=["GET"]),
    Route("/e/{event_id:int}/thumbs/{job_id}.jpg", gallery_thumb, methods=["GET"]),
    Route("/kiosk", kiosk, methods=["GET"]),
    Mount(STATIC_PREFIX, app=_CachedStatic(), name="pages-static"),
    *styles_api.routes,
]

__all__ = ["job_state", "routes"]
