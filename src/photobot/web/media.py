"""Serves local-storage objects under signed, expiring URLs (`/media/{key}?exp=…&sig=…`).

Only used with `LocalStorage`; with S3 the links are presigned and point at the bucket. A bad or expired
signature is 403; the key is validated so no path can leave the media directory. A good signature for an object
that is no longer stored is 410: we only sign links to photos that exist, so it was deleted since (retention, a
guest who asked to be forgotten, a purged event).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from photobot.problems import Problem, not_found
from photobot.runtime import Runtime
from photobot.storage.base import StorageError, content_type_for
from photobot.storage.local import LocalStorage


async def media(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    storage = runtime.storage
    if not isinstance(storage, LocalStorage):
        raise not_found()
    key = request.path_params["key"]
    try:
        expires_at = int(request.query_params.get("exp", ""))
    except ValueError:
        raise Problem(403, "bad_signature", "Forbidden", "The link is invalid or has expired.") from None
    filename = request.query_params.get("filename")
    if not storage.verify(key, expires_at, request.query_params.get("sig", ""), filename=filename):
        raise Problem(403, "bad_signature", "Forbidden", "The link is invalid or has expired.")
    try:
        path = storage.path_for(key)
    except StorageError:
        raise not_found() from None
    if not path.is_file():
        raise Problem(410, "gone", "Gone", "This photo was deleted.")
    return FileResponse(
        path,
        media_type=content_type_for(key),
        filename=filename,
        content_disposition_type="attachment" if filename else "inline",
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


routes = [Route("/media/{key:path}", media, methods=["GET", "HEAD"])]
