"""The one way Photobot requests a URL it did not choose: client image URLs and provider result URLs (GET,
`stream`), and operators' webhook endpoints (POST, `post`).

What it guarantees, hop by hop (redirects are followed by hand so each one is checked again):
- the URL passes `urls.check_url`: https only unless private networks are allowed, no credentials, host in
  the allowlist when one is given;
- every address the host resolves to is public (`addresses`), and the socket connects to one of those checked
  addresses without a second lookup (`backend.PinnedBackend`), so DNS rebinding has nothing to race;
- the body is capped while it streams (the Content-Length is checked first when announced) and is never held
  whole in memory; connect, read and total time are bounded;
- bodies are read raw (`Accept-Encoding: identity`, no transparent decompression), so the cap counts the
  bytes actually stored and a gzip bomb cannot expand behind it.
`post` sends one request and never follows a redirect: a 3xx comes back as its status like any other answer
(a webhook receiver that moved must be updated, not chased), and at most `max_bytes` of the answer are read.
Failures raise `FetchError` subclasses with a stable `code`; their messages never contain query strings.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
import httpx

from photobot.files import open_fresh
from photobot.net.addresses import AddressPolicy
from photobot.net.backend import PinnedBackend, Resolver
from photobot.net.errors import FetchError, FetchFailed, FetchTimeout, TooLarge, redact_url
from photobot.net.transport import PinnedTransport
from photobot.net.urls import HostAllowlist, check_url, parse_url

if TYPE_CHECKING:
    from photobot.settings import Settings

DEFAULT_USER_AGENT = "photobot-fetcher/1"


@dataclass(frozen=True)
class FetchResult:
    """What `stream_to_file` wrote. URLs are the caller's own (unredacted); `size` is bytes written."""

    url: str
    final_url: str
    content_type: str | None
    size: int


@dataclass(frozen=True)
class PostResult:
    """The answer to `SafeFetcher.post`: any status (redirects included, never followed) and the start of the body."""

    status_code: int
    body: bytes  # at most the `max_bytes` asked for; the rest was never read
    truncated: bool

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class FetchResponse:
    """An open 2xx response whose body can be read once, in chunks, under the size cap and the deadline."""

    def __init__(self, response: httpx.Response, *, url: str, max_bytes: int, deadline: float) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self._deadline = deadline
        self.url = url
        self.final_url = str(response.url)
        self.status_code = response.status_code
        self.headers = response.headers
        self.bytes_read = 0

    @property
    def content_type(self) -> str | None:
        """The declared media type without parameters (informational only: never trust it for images)."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() or None if value else None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; raises TooLarge as soon as the running total passes the cap."""
        chunks = self._response.aiter_raw().__aiter__()
        while True:
            remaining = self._deadline - time.monotonic()
            try:
                with _fetch_errors(self.final_url):
                    if remaining <= 0:
                        raise TimeoutError
                    with anyio.fail_after(remaining):
                        chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            self.bytes_read += len(chunk)
            if self.bytes_read > self._max_bytes:
                raise TooLarge(
                    f"body is larger than {self._max_bytes} bytes: {redact_url(self.final_url)}",
                    limit=self._max_bytes,
                )
            yield chunk


class SafeFetcher:
    """SSRF-safe streaming GET. Create one per process (it owns a connection pool) and `aclose()` it.

    `allow_private=True` (PHOTOBOT_ALLOW_PRIVATE_NETWORKS, for development and tests) allows http and
    private addresses; size, redirect, timeout and allowlist rules still apply. `allow_http` and
    `address_policy` override the two halves separately (tests use them to allow exactly 127.0.0.1 while
    10/8, 169.254/16, ... stay refused). `resolver` replaces the OS resolver (tests fake DNS with it).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        allow_http: bool | None = None,
        address_policy: AddressPolicy | None = None,
        resolver: Resolver | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float | None = None,
        timeout: float = 30.0,
        max_redirects: int = 5,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.allow_http = allow_private if allow_http is None else allow_http
        self.policy = address_policy or AddressPolicy(allow_private=allow_private)
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.backend = PinnedBackend(self.policy, resolver)
        self._client = httpx.AsyncClient(
            transport=PinnedTransport(self.backend, ssl_context=ssl_context),
            timeout=httpx.Timeout(
                connect=connect_timeout,
                read=read_timeout if read_timeout is not None else timeout,
                write=read_timeout if read_timeout is not None else timeout,
                pool=connect_timeout,
            ),
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity", "Accept": "*/*"},
            cookies=_no_cookies(),
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        allow_http: bool | None = None,
        address_policy: AddressPolicy | None = None,
        timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SafeFetcher:
        return cls(
            allow_private=settings.allow_private_networks,
            allow_http=allow_http,
            address_policy=address_policy,
            connect_timeout=settings.provider_connect_timeout_s,
            timeout=settings.provider_timeout_s if timeout is None else timeout,
            ssl_context=ssl_context,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> SafeFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        max_bytes: int,
        allowed_hosts: Iterable[str] | None = None,
    ) -> AsyncIterator[FetchResponse]:
        """Open `url` (following checked redirects) and yield the 2xx response; read it with `aiter_bytes()`.

        The total timeout runs from the call until the body is read; TooLarge is raised before reading when
        Content-Length already exceeds `max_bytes`.
        """
        deadline = time.monotonic() + self.timeout
        allowlist = HostAllowlist.parse(allowed_hosts) if allowed_hosts is not None else None
        response = await self._open(url, allowlist=allowlist, deadline=deadline)
        try:
            wrapped = FetchResponse(response, url=url, max_bytes=max_bytes, deadline=deadline)
            if wrapped.content_length is not None and wrapped.content_length > max_bytes:
                raise TooLarge(
                    f"Content-Length {wrapped.content_length} exceeds {max_bytes} bytes: {redact_url(response.url)}",
                    limit=max_bytes,
                )
            yield wrapped
        finally:
            await response.aclose()

    async def stream_to_file(
        self,
        url: str,
        dest: str | Path | IO[bytes],
        *,
        max_bytes: int,
        allowed_hosts: Iterable[str] | None = None,
    ) -> FetchResult:
        """Download `url` into `dest` (a path, created or truncated and removed again on failure, or an
        open binary file the caller owns)."""
        if isinstance(dest, str | Path):
            path = Path(dest)
            try:
                # Plain writes: a chunk (at most a few hundred KB) lands in the page cache in microseconds,
                # while a thread hop per chunk doubled the transfer time of a 2 MB result. `open_fresh`: a
                # temporary file truncated on open would be flushed to disk on close, on the event loop.
                with open_fresh(path) as out:
                    async with self.stream(url, max_bytes=max_bytes, allowed_hosts=allowed_hosts) as resp:
                        async for chunk in resp.aiter_bytes():
                            out.write(chunk)
            except BaseException:
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
        else:
            async with self.stream(url, max_bytes=max_bytes, allowed_hosts=allowed_hosts) as resp:
                async for chunk in resp.aiter_bytes():
                    dest.write(chunk)
        return FetchResult(url=url, final_url=resp.final_url, content_type=resp.content_type, size=resp.bytes_read)

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        max_bytes: int,
        timeout: float | None = None,
    ) -> PostResult:
        """POST `content` to `url` once, under the same URL and address rules as a GET, within `timeout` seconds
        (the fetcher's own by default) for the whole exchange; reads at most `max_bytes` of the answer."""
        current = parse_url(url)
        check_url(current, allow_http=self.allow_http, allowlist=None)
        request = self._client.build_request("POST", current, content=content, headers=dict(headers))
        body = bytearray()
        truncated = False
        with _fetch_errors(current), anyio.fail_after(self.timeout if timeout is None else timeout):
            response = await self._client.send(request, stream=True)
            try:
                async for chunk in response.aiter_raw():
                    room = max_bytes - len(body)
                    body += chunk[:room]
                    if len(chunk) > room:
                        truncated = True
                        break
            finally:
                await response.aclose()
        return PostResult(response.status_code, bytes(body), truncated)

    async def _open(self, url: str, *, allowlist: HostAllowlist | None, deadline: float) -> httpx.Response:
        """Send GETs hop by hop until a non-redirect answer; return it open (2xx) or raise."""
        current = parse_url(url)
        for _hop in range(self.max_redirects + 1):
            check_url(current, allow_http=self.allow_http, allowlist=allowlist)
            request = self._client.build_request("GET", current)
            remaining = deadline - time.monotonic()
            with _fetch_errors(current):
                if remaining <= 0:
                    raise TimeoutError
                with anyio.fail_after(remaining):
                    response = await self._client.send(request, stream=True)
            if response.is_redirect:
                location = response.headers["location"]
                await response.aclose()
                try:
                    current = current.join(location)
                except (httpx.InvalidURL, ValueError):
                    raise FetchFailed(f"invalid redirect location from {redact_url(current)}") from None
                continue
            if not response.is_success:
                await response.aclose()
                raise FetchFailed(
                    f"HTTP {response.status_code} from {redact_url(current)}", status_code=response.status_code
                )
            return response
        raise FetchFailed(f"more than {self.max_redirects} redirects, last {redact_url(current)}")


@contextlib.contextmanager
def _fetch_errors(url: object) -> Iterator[None]:
    """Map httpx / timeout errors to FetchError without leaking the URL's query into the message."""
    try:
        yield
    except FetchError:
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise FetchTimeout(f"timed out fetching {redact_url(url)}") from None
    except httpx.TransportError as exc:
        # httpcore/OS messages name the peer address at most, never the URL; keep them for diagnosis.
        detail = str(exc)[:200]
        raise FetchFailed(f"{exc.__class__.__name__} fetching {redact_url(url)}: {detail}") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{exc.__class__.__name__} fetching {redact_url(url)}") from None


def _no_cookies() -> httpx.Cookies:
    """A cookie jar that keeps nothing: one fetch must never carry another's cookies."""
    policy = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    return httpx.Cookies(http.cookiejar.CookieJar(policy=policy))
