"""OpenAPI: every route of the app is documented, schemas come from the models, /docs is self-contained."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema

from photobot.admin.schemas import EventCreate, KeyCreate
from photobot.api.schemas import JobRequest
from photobot.app import create_app
from photobot.db import Database
from photobot.settings import Settings
from photobot.web.openapi import build_spec, iter_operations, undocumented
from tests.support.stack import StackFactory


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_route_is_documented(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), run_dispatcher=False)
    assert undocumented(app) == []
    spec = build_spec(app)
    operations = list(iter_operations(list(app.routes)))
    assert len(operations) > 30
    for method, path, _, _ in operations:
        entry = spec["paths"][path][method.lower()]
        assert entry["summary"] and entry["summary"] != "(undocumented)", (method, path)
        assert entry["responses"], (method, path)
    # every route the app has, walked independently of the helper
    for route in app.routes:
        raw = getattr(route, "path", "")
        template = re.sub(r"\{(\w+):\w+\}", r"{\1}", raw)
        assert any(p == template or p.startswith(template.rstrip("/") + "/{") for p in spec["paths"]), raw


def test_schemas_come_from_the_models(make_settings: Callable[..., Settings]) -> None:
    spec = build_spec(create_app(make_settings(), run_dispatcher=False))
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref
    assert schemas["EventCreate"]["properties"].keys() == EventCreate.model_json_schema()["properties"].keys()
    assert schemas["KeyCreate"]["required"] == KeyCreate.model_json_schema()["required"]
    required = set(JobRequest.model_json_schema()["required"])
    assert set(schemas["JobRequest"]["required"]) == {"style"} == required  # no image for a text-to-image style
    submit = spec["paths"]["/v1/jobs"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert submit["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobView")
    assert submit["security"] == [{"bearer": []}]
    retry = spec["paths"]["/v1/admin/jobs/{job_id}/retry"]["post"]
    assert set(retry["responses"]) >= {"201", "401", "403", "402", "404", "409"}
    listing = spec["paths"]["/v1/admin/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"event_id", "state", "since", "until", "limit"}
    assert spec["paths"]["/v1/admin/events/{event_id}"]["get"]["parameters"][0]["schema"] == {"type": "integer"}
    # the schemas are valid JSON Schema (2020-12, as OpenAPI 3.1 uses)
    jsonschema.Draft202012Validator.check_schema({"$defs": schemas})


async def test_openapi_json_and_docs_over_http(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        response = await env.client.get("/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        assert spec["openapi"].startswith("3.1") and "/v1/admin/jobs/{job_id}/fail" in spec["paths"]
        # a documented response validates a real one: GET /v1/admin/events
        events = await env.client.get("/v1/admin/events", headers=env.admin)
        schema = spec["paths"]["/v1/admin/events"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(events.json(), {**schema, "components": spec["components"]})

        docs = await env.client.get("/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        html = docs.text
        assert "openapi.json" in html
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "docs must not load anything remote"
        assert "default-src 'none'" in docs.headers["content-security-policy"]
        # Swagger UI, served from the installed package; nothing else of the package's folder is reachable
        for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css"),
                           ("photobot-docs.js", "javascript")):  # fmt: skip
            asset = await env.client.get(f"/docs/{name}")
            assert asset.status_code == 200 and kind in asset.headers["content-type"], name
            assert f'src="docs/{name}"' in html or f'href="docs/{name}"' in html
        for name in ("swagger-editor-bundle.js", "..%2Fcore.py", "index.css"):
            assert (await env.client.get(f"/docs/{name}")).status_code == 404
