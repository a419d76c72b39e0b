"""URL rules: schemes, credentials, the host allowlist, and redaction of secrets from messages."""

from __future__ import annotations

import httpx
import pytest

from photobot.net import HostAllowlist, UrlNotAllowed, redact_url
from photobot.net.urls import check_url, parse_url


def test_allowlist_host_means_default_port() -> None:
    allow = HostAllowlist.parse(["file.kie.ai", "127.0.0.1:8081", "*.fal.media", "[::1]:9000"])
    assert allow.allows(httpx.URL("https://file.kie.ai/a.png"))
    assert allow.allows(httpx.URL("https://FILE.kie.ai./a.png"))
    assert not allow.allows(httpx.URL("https://file.kie.ai:8443/a.png"))
    assert not allow.allows(httpx.URL("https://evil-file.kie.ai/a.png"))
    assert allow.allows(httpx.URL("http://127.0.0.1:8081/x"))
    assert not allow.allows(httpx.URL("http://127.0.0.1:8082/x"))
    assert allow.allows(httpx.URL("https://v3.fal.media/x"))
    assert not allow.allows(httpx.URL("https://fal.media/x"))
    assert not allow.allows(httpx.URL("https://v3.fal.media.evil.com/x"))
    assert not allow.allows(httpx.URL("https://evilfal.media/x"))
    assert allow.allows(httpx.URL("http://[::1]:9000/x"))


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://example.com/a.jpg", False),
        ("ftp://example.com/a.jpg", True),
        ("file:///etc/passwd", True),
        ("gopher://example.com/", True),
        ("https://user:pw@example.com/a.jpg", False),
    ],
)
def test_refused_urls(url: str, allow_http: bool) -> None:
    with pytest.raises(UrlNotAllowed) as info:
        check_url(parse_url(url), allow_http=allow_http, allowlist=None)
    assert info.value.code == "url_not_allowed"
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("url", ["not a url", "/relative/path", "https:///no-host", "https://[::1/"])
def test_unparseable_urls(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_url(parse_url(url), allow_http=True, allowlist=None)


def test_redact_url_drops_query_fragment_and_credentials() -> None:
    redacted = redact_url("https://user:secret@host.example:8443/p/a.png?X-Amz-Signature=abc#frag")
    assert redacted == "https://host.example:8443/p/a.png"
    assert redact_url("http://[::1]:80/x?token=t") == "http://[::1]:80/x"


def test_errors_map_to_client_problems() -> None:
    from photobot.net import AddressNotAllowed, FetchFailed, FetchTimeout, TooLarge

    cases = [
        (UrlNotAllowed("u"), 422, "url_not_allowed"),
        (AddressNotAllowed("a"), 422, "address_not_allowed"),
        (TooLarge("t", limit=5), 413, "too_large"),
        (FetchTimeout("t"), 422, "fetch_timeout"),
        (FetchFailed("f", status_code=500), 422, "fetch_failed"),
    ]
    for error, status, code in cases:
        problem = error.to_problem()
        assert (problem.status, problem.code, error.code) == (status, code, code)
