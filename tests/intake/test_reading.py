"""Byte caps while reading: chunk streams and base64 data URIs."""

from __future__ import annotations

import base64
import io

import pytest

from photobot.intake import ImageTooLarge, InvalidDataUri, decode_data_uri


def test_data_uri_round_trip_across_slices() -> None:
    payload = bytes(range(256)) * 1500  # 384 000 bytes: several decode slices
    uri = "data:image/png;base64," + base64.b64encode(payload).decode()
    dest = io.BytesIO()
    declared, size = decode_data_uri(uri, dest, max_bytes=len(payload))
    assert declared == "image/png"
    assert size == len(payload)
    assert dest.getvalue() == payload


def test_data_uri_tolerates_whitespace_and_missing_padding() -> None:
    payload = b"hello world!!"  # 13 bytes: base64 ends with padding
    text = base64.b64encode(payload).decode()
    wrapped = "\n".join(text[i : i + 4] for i in range(0, len(text), 4)).rstrip("=")
    dest = io.BytesIO()
    declared, size = decode_data_uri("DATA:Image/JPEG;charset=x;base64, " + wrapped, dest, max_bytes=100)
    assert (declared, size, dest.getvalue()) == ("image/jpeg", 13, payload)


def test_data_uri_exactly_at_cap_and_one_over() -> None:
    payload = b"x" * 3000
    uri = "data:image/jpeg;base64," + base64.b64encode(payload).decode()
    assert decode_data_uri(uri, io.BytesIO(), max_bytes=3000)[1] == 3000
    with pytest.raises(ImageTooLarge):
        decode_data_uri(uri, io.BytesIO(), max_bytes=2999)


def test_data_uri_oversized_is_refused_before_decoding() -> None:
    uri = "data:image/jpeg;base64," + "!" * 8_000_000  # not even valid base64: refused by length first
    dest = io.BytesIO()
    with pytest.raises(ImageTooLarge):
        decode_data_uri(uri, dest, max_bytes=5 * 1024 * 1024)
    assert dest.tell() == 0


def test_data_uri_cap_applies_to_decoded_bytes_mid_stream() -> None:
    payload = b"y" * 200_000
    # Padding the text with whitespace defeats the length pre-check; the streaming cap still stops it.
    text = base64.b64encode(payload).decode()
    uri = "data:image/jpeg;base64," + " ".join(text[i : i + 76] for i in range(0, len(text), 76))
    dest = io.BytesIO()
    with pytest.raises(ImageTooLarge):
        decode_data_uri(uri, dest, max_bytes=100_000)
    assert dest.tell() <= 100_000


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/a.jpg",
        "data:image/png,rawbytes",  # not base64
        "data:image/png;base64",  # no comma
        "data:image/png;base64,AAA*AAAA",  # invalid character
        "data:image/png;base64,A",  # truncated
        "data:image/png;base64,",  # empty
    ],
)
def test_invalid_data_uris(uri: str) -> None:
    with pytest.raises(InvalidDataUri) as info:
        decode_data_uri(uri, io.BytesIO(), max_bytes=1000)
    assert info.value.code == "invalid_data_uri"
    assert info.value.status == 422
