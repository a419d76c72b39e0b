"""Field rules of `POST /v1/jobs`, over JSON and multipart: each refusal leaves nothing behind."""

from __future__ import annotations

from typing import Any

from photobot.services.styles import StyleIn, upsert_styles
from tests.support.api import assert_accepted, assert_problem, job_row, submit_json, submit_multipart, unchanged
from tests.support.images import jpeg
from tests.support.stack import Stack

SUBMITTERS = (submit_json, submit_multipart)


async def add_styles(api: Stack) -> None:
    async with api.db.session() as session:
        await upsert_styles(
            session,
            [
                StyleIn(id="retired", name="Retired", prompt="old", active=False),
                StyleIn(id="edit_jpeg", name="Edit", prompt="p", model="google/nano-banana-edit"),
                StyleIn(id="square", name="Square", prompt="p", aspect_ratio="1:1", output_format="jpg"),
            ],
        )


async def test_field_refusals(api: Stack) -> None:
    await add_styles(api)
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        # (fields, status, code, field named in the problem)
        ({"style": None}, 422, "validation_error", "style"),
        ({"style": ""}, 422, "validation_error", "style"),
        ({"style": "no_such_style"}, 422, "unknown_style", None),
        ({"style": "retired"}, 422, "unknown_style", None),
        ({"aspect_ratio": "7:3"}, 422, "invalid_parameter", "aspect_ratio"),
        ({"resolution": "8K"}, 422, "invalid_parameter", "resolution"),
        ({"style": "edit_jpeg", "resolution": "2K"}, 422, "invalid_parameter", "resolution"),
        ({"output_format": "gif"}, 422, "invalid_parameter", "output_format"),
        ({"style": "edit_jpeg", "output_format": "webp"}, 422, "invalid_parameter", "output_format"),
        ({"email": "not-an-email"}, 422, "validation_error", "email"),
        ({"email": "guest@"}, 422, "validation_error", "email"),
        ({"phone": "08123456789"}, 422, "validation_error", "phone"),  # national form, not E.164
        ({"phone": "+1555"}, 422, "validation_error", "phone"),
        ({"phone": "+62abc"}, 422, "validation_error", "phone"),
        ({"colour": "blue"}, 422, "validation_error", "colour"),  # unknown field
        ({"guest_id": "g" * 201}, 422, "validation_error", "guest_id"),
    ]
    async with unchanged(api):
        for fields, status, code, field in cases:
            for submit in SUBMITTERS:
                response = await submit(api, **fields) if fields.get("style", 1) is not None else None
                if response is None:  # no style at all
                    response = await _without_style(api, submit)
                body = assert_problem(response, status, code)
                if field is not None:
                    named = {e.get("field") for e in body.get("errors", [])} | {body.get("field")}
                    assert field in named or field in body["detail"], (submit.__name__, fields, body)


async def _without_style(api: Stack, submit: Any) -> Any:
    if submit is submit_json:
        from tests.support.images import data_uri

        return await api.client.post("/v1/jobs", json={"image": data_uri(jpeg())}, headers=api.auth)
    return await api.client.post("/v1/jobs", files={"image": ("p.jpg", jpeg(), "image/jpeg")}, headers=api.auth)


async def test_fields_are_validated_normalised_and_stored(api: Stack) -> None:
    await add_styles(api)
    for submit in SUBMITTERS:
        body = assert_accepted(
            await submit(
                api,
                style="pb_a",
                aspect_ratio="16:9",
                resolution="2k",
                output_format="jpeg",  # nano-banana-pro spells it jpg
                guest_id="guest-42",
                email="Guest@Example.com",
                phone="+44 20 7946 0958",
            )
        )
        job = await job_row(api, body["id"])
        assert (job.aspect_ratio, job.resolution, job.output_format) == ("16:9", "2K", "jpg")
        assert (job.guest_id, job.email, job.phone) == ("guest-42", "Guest@example.com", "+442079460958")
        assert job.style_id == "pb_a" and job.state == "pending" and job.cost == 1

        # google/nano-banana-edit spells it jpeg and has no resolution; the defaults come from the model
        edit = await job_row(api, assert_accepted(await submit(api, style="edit_jpeg", output_format="jpg"))["id"])
        assert (edit.model, edit.output_format, edit.resolution, edit.aspect_ratio) == (
            "google/nano-banana-edit",
            "jpeg",
            None,
            "1:1",
        )
        # the style's own defaults apply when the client sends nothing (and empty strings count as nothing)
        plain = await job_row(
            api, assert_accepted(await submit(api, style="suit_b", email="", guest_id="", phone=""))["id"]
        )
        assert (plain.aspect_ratio, plain.resolution, plain.output_format) == ("4:5", "1K", "png")
        assert (plain.email, plain.guest_id, plain.phone) == (None, None, None)


async def test_body_shape_errors_are_problems(api: Stack) -> None:
    headers = api.auth
    async with unchanged(api):
        response = await api.client.post(
            "/v1/jobs", content=b'{"style": "pb_a", "image": ', headers={**headers, "Content-Type": "application/json"}
        )
        assert_problem(response, 400, "malformed_json")
        assert_problem(await api.client.post("/v1/jobs", json=["pb_a"], headers=headers), 422, "validation_error")
        assert_problem(
            await api.client.post("/v1/jobs", json={"style": "pb_a", "image": 42}, headers=headers),
            422,
            "validation_error",
        )
        assert_problem(
            await api.client.post("/v1/jobs", json={"style": "pb_a"}, headers=headers), 422, "validation_error"
        )
        for image in ("ftp://example.com/p.jpg", "file:///etc/passwd", "/etc/passwd", "javascript:alert(1)"):
            assert_problem(await submit_json(api, image), 422, "validation_error")
        assert_problem(await submit_json(api, "data:image/jpeg;base64,@@@@"), 422, "invalid_data_uri")
        assert_problem(await submit_json(api, "data:image/jpeg,rawbytes"), 422, "invalid_data_uri")
        response = await api.client.post(
            "/v1/jobs", content=b"style=pb_a", headers={**headers, "Content-Type": "text/plain"}
        )
        assert_problem(response, 415, "unsupported_content_type")
        response = await api.client.post(
            "/v1/jobs", content=b"style=pb_a", headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
        )
        assert_problem(response, 415, "unsupported_content_type")
        # multipart without an image part, with the file under another name, with a field given twice
        assert_problem(
            await api.client.post("/v1/jobs", data={"style": "pb_a"}, files={"x": ("a", b"b")}, headers=headers),
            422,
            "validation_error",
        )
        assert_problem(
            await api.client.post(
                "/v1/jobs",
                data={"style": "pb_a"},
                files={"photo": ("p.jpg", jpeg(), "image/jpeg")},
                headers=headers,
            ),
            422,
            "validation_error",
        )
        assert_problem(
            await api.client.post(
                "/v1/jobs",
                data={"style": ["pb_a", "pb_b"]},
                files={"image": ("p.jpg", jpeg(), "image/jpeg")},
                headers=headers,
            ),
            422,
            "validation_error",
        )
        response = await api.client.post(
            "/v1/jobs", content=b"--x\r\nbroken", headers={**headers, "Content-Type": "multipart/form-data; boundary=x"}
        )
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        # every other error the app returns is problem+json too
        assert_problem(await api.client.get("/v1/nothing-here", headers=headers), 404, "not_found")
        assert_problem(await api.client.put("/v1/jobs", headers=headers), 405, "method_not_allowed")
        response = await api.client.post(
            "/v1/jobs", json={"style": "pb_a", "image": "x"}, headers={**headers, "Idempotency-Key": "k" * 201}
        )
        assert_problem(response, 422, "validation_error")
