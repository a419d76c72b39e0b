"""`GET /v1/styles` (for the kiosk's style picker) and the kiosk page itself (no browser)."""

from __future__ import annotations

from photobot.db.models import Style
from tests.support.stack import Stack


async def test_styles_need_a_token_and_list_active_styles(shared_pages: Stack) -> None:
    env = shared_pages
    assert (await env.client.get("/v1/styles")).status_code == 401
    bad = await env.client.get("/v1/styles", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    async with env.db.session() as session:
        hidden = await session.get(Style, "pb_d")
        assert hidden is not None
        hidden.active = False
    response = await env.client.get("/v1/styles", headers={"Authorization": f"Bearer {env.kiosk_token}"})
    assert response.status_code == 200
    styles = response.json()["styles"]
    pixar = next(s for s in styles if s["id"] == "pb_a")
    assert pixar["name"] == "Pixar-style 3D" and pixar["takes_photo"] is True
    assert "/media/styles/pb_a/preview.jpg?exp=" in pixar["preview_url"]
    assert all(set(s) == {"id", "name", "takes_photo", "preview_url"} for s in styles)
    assert "pb_d" not in {s["id"] for s in styles}


async def test_kiosk_page_is_self_contained(shared_pages: Stack) -> None:
    response = await shared_pages.client.get("/kiosk")
    assert response.status_code == 200
    assert response.headers["permissions-policy"] == "camera=(self)"
    html = response.text
    assert "kiosk.js?v=" in html and "pages.css?v=" in html
    assert "http://" not in html.replace('href="#"', "") and "https://" not in html  # no CDN, nothing external
    script = await shared_pages.client.get(
        html[html.index("/pages-static/kiosk.js") : html.index('"', html.index("/pages-static/kiosk.js"))]
    )
    assert "/v1/styles" in script.text and "/v1/jobs" in script.text and "localStorage" in script.text
