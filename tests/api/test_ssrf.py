"""URL inputs through the API with PHOTOBOT_ALLOW_PRIVATE_NETWORKS=false: private targets are refused.

The refusals happen before any connection (addresses are checked at resolve time), so most cases need no
server. The redirect case needs a reachable origin: the app's fetcher is replaced (test wiring, on the
running app) by a real `SafeFetcher` that allows exactly 127.0.0.1 plus http, and whose resolver fakes DNS,
while every other private, link-local or metadata address stays refused.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from photobot.db import Database
from photobot.net import AddressPolicy, SafeFetcher
from photobot.settings import Settings
from tests.support.api import assert_accepted, assert_problem, submit_json, unchanged
from tests.support.images import jpeg
from tests.support.servers import serve
from tests.support.stack import open_app


async def test_private_targets_are_refused(database: Database, make_settings: Callable[..., Settings]) -> None:
    photo = jpeg()
    hits: list[str] = []

    async def origin(request: Request) -> Response:
        hits.append(request.url.path)
        target = request.query_params.get("to")
        if target:
            return RedirectResponse(target, status_code=302)
        return Response(photo, media_type="image/jpeg")

    async with (
        serve(Starlette(routes=[Route("/{path:path}", origin)])) as origin_url,
        open_app(
            database,
            make_settings,
            allow_private_networks=False,
            # kie with a key rather than the simulator: jobs/wiring.py cannot build its result fetcher for a
            # simulator named by host name with private networks off (reported; not an intake concern)
            provider="kie",
            kie_api_keys="test-key-not-used",
        ) as served,
    ):
        api = served
        port = origin_url.rsplit(":", 1)[1]
        async with unchanged(api):
            # with the production fetcher: loopback (even over https), RFC 1918, metadata, mapped IPv6, http
            for url, code in (
                (f"https://127.0.0.1:{port}/photo.jpg", "address_not_allowed"),
                ("https://10.0.0.8/photo.jpg", "address_not_allowed"),
                ("https://169.254.169.254/latest/meta-data/iam/", "address_not_allowed"),
                (f"https://[::ffff:127.0.0.1]:{port}/photo.jpg", "address_not_allowed"),
                ("https://[::ffff:a00:1]/photo.jpg", "address_not_allowed"),  # ::ffff:10.0.0.1
                ("https://[::1]/photo.jpg", "address_not_allowed"),
                ("https://0.0.0.0/photo.jpg", "address_not_allowed"),
                (f"{origin_url}/photo.jpg", "url_not_allowed"),  # plain http
                ("https://user:pw@example.com/photo.jpg", "url_not_allowed"),
            ):
                response = await submit_json(api, url)
                body = assert_problem(response, 422, code)
                assert "pw" not in body["detail"], body
            assert hits == []  # nothing was ever connected to

            # test wiring: a real SafeFetcher allowing exactly the origin (127.0.0.1, http) and faking DNS
            names = {
                "photos.example": ["127.0.0.1"],
                "evil.example": ["10.1.2.3"],
                "mixed.example": ["127.0.0.1", "192.168.0.9"],
            }
            served.runtime.fetcher = SafeFetcher(
                allow_private=False,
                allow_http=True,
                address_policy=AddressPolicy.allowing(["127.0.0.1/32"]),
                resolver=lambda host: names.get(host, []),
            )
            try:
                for url in (
                    f"http://photos.example:{port}/r?to=http://169.254.169.254/latest/meta-data/",
                    f"http://photos.example:{port}/r?to=http://10.0.0.1/x.jpg",
                    f"http://photos.example:{port}/r?to=http://[::ffff:169.254.169.254]/",
                    f"http://photos.example:{port}/r?to=http://127.0.0.2:{port}/photo.jpg",
                    f"http://photos.example:{port}/r?to=http://evil.example:{port}/photo.jpg",
                    f"http://evil.example:{port}/photo.jpg",  # a name that resolves to a private address
                    f"http://mixed.example:{port}/photo.jpg",  # one private answer taints the name
                ):
                    assert_problem(await submit_json(api, url), 422, "address_not_allowed")
                assert hits == ["/r"] * 5  # the redirects were followed up to the refused hop, never beyond
            finally:
                await served.runtime.fetcher.aclose()

        # the same wiring fetches an allowed origin, also through a redirect
        served.runtime.fetcher = SafeFetcher(
            allow_private=False,
            allow_http=True,
            address_policy=AddressPolicy.allowing(["127.0.0.1/32"]),
            resolver=lambda host: names.get(host, []),
        )
        assert_accepted(await submit_json(api, f"http://photos.example:{port}/r?to=/photo.jpg"))
        await served.runtime.fetcher.aclose()
