"""Hypothesis on the callback parsers and the image intake: no crash other than the typed errors.

- `parse_kie_callback` / `parse_fal_webhook`: any bytes, any JSON value, and JSON shaped like the real bodies
  with arbitrary values → a `CallbackEvent` or `CallbackMalformed` / `CallbackRejected`, nothing else;
- `sniff`, `decode_data_uri`, `process_image`: any bytes / strings, and real images damaged at random →
  a result or an `ImageError` (a problem+json 4xx), nothing else.
Bounded: a few hundred examples each, no deadline (the machine may be loaded).
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photobot.intake import process_image
from photobot.intake.errors import ImageError
from photobot.intake.reading import decode_data_uri
from photobot.intake.sniff import sniff
from photobot.providers.base import CallbackEvent
from photobot.providers.errors import CallbackMalformed, CallbackRejected
from photobot.providers.fal import parse_fal_webhook
from photobot.providers.kie import parse_kie_callback
from tests.support.images import image_bytes

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
anything = json_values | st.text(max_size=20)

kie_like = st.fixed_dictionaries(
    {"code": st.one_of(st.integers(), st.text(max_size=5), st.none()), "msg": anything},
    optional={
        "data": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "taskId": anything, "task_id": anything, "state": st.sampled_from(
                        ["success", "fail", "waiting", "", None, 1]),
                    "resultJson": st.one_of(anything, json_values.map(json.dumps),
                                            st.just('{"resultUrls": ["https://x/y.png"]}')),
                    "failCode": anything, "failMsg": anything,
                },
            ),
            anything,
        ),
        "taskId": anything,
    },
)  # fmt: skip

fal_like = st.fixed_dictionaries(
    {},
    optional={
        "request_id": anything, "status": st.sampled_from(["OK", "ERROR", "IN_PROGRESS", "", None, 3]),
        "payload": st.one_of(anything, st.fixed_dictionaries({}, optional={
            "images": st.lists(st.one_of(anything, st.fixed_dictionaries({"url": anything})), max_size=3),
            "detail": anything})),
        "payload_error": anything, "error": anything, "gateway_request_id": anything,
    },
)  # fmt: skip


def _parse_or_typed_error(parser, body: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        event = parser(body)
    except (CallbackMalformed, CallbackRejected):
        return
    assert isinstance(event, CallbackEvent)
    assert isinstance(event.task_id, str) and event.task_id
    assert event.outcome in ("success", "fail")
    assert all(isinstance(u, str) for u in event.result_urls)


@FUZZ
@given(st.binary(max_size=300))
def test_kie_callback_any_bytes(body: bytes) -> None:
    _parse_or_typed_error(parse_kie_callback, body)


@FUZZ
@given(st.one_of(kie_like, json_values))
def test_kie_callback_shaped_json(payload: object) -> None:
    _parse_or_typed_error(parse_kie_callback, json.dumps(payload).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_fal_webhook_any_bytes(body: bytes) -> None:
    _parse_or_typed_error(parse_fal_webhook, body)


@FUZZ
@given(st.one_of(fal_like, json_values))
def test_fal_webhook_shaped_json(payload: object) -> None:
    _parse_or_typed_error(parse_fal_webhook, json.dumps(payload).encode())


# --- image intake --------------------------------------------------------------------------------------


SEEDS = [image_bytes(fmt, (24, 16), "orange") for fmt in ("JPEG", "PNG", "WEBP")]


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=64))
def test_sniff_any_bytes(head: bytes) -> None:
    try:
        fmt = sniff(head)
    except ImageError as exc:
        assert 400 <= exc.status < 500
        return
    assert fmt.content_type in ("image/jpeg", "image/png", "image/webp")


@FUZZ
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(lambda h, p: f"data:{h},{p}", st.text(max_size=30), st.text(max_size=80)),
        st.builds(lambda p: "data:image/png;base64," + p, st.text(alphabet="ABCD+/=\n -_", max_size=80)),
        st.binary(max_size=60).map(lambda b: "data:image/jpeg;base64," + base64.b64encode(b).decode()),
    )
)
def test_decode_data_uri_any_text(uri: str) -> None:
    out = io.BytesIO()
    try:
        declared, size = decode_data_uri(uri, out, max_bytes=40)
    except ImageError as exc:
        assert 400 <= exc.status < 500
        return
    assert isinstance(declared, str) and 0 < size <= 40 and len(out.getvalue()) == size


@IMAGES
@given(st.one_of(damaged_images(), st.binary(max_size=200)))
def test_process_image_damaged_inputs(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in"
        source.write_bytes(data)
        try:
            result = process_image(source, max_pixels=1_000_000, max_long_side=64, dest_dir=tmp)
        except ImageError as exc:
            assert 400 <= exc.status < 500
            return
        assert result.path.exists()
