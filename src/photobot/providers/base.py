"""The provider interface: what the dispatcher and the webhook receivers call, whatever the provider.

A provider turns a `GenerationRequest` into a provider task (`submit` → `SubmitResult`), reports a task's state
(`fetch_status` → `TaskStatus`) and reads its callbacks (`verify_callback`, then `parse_callback` →
`CallbackEvent`). Every failure is a `ProviderError` (see `errors.py`) with a stable code, a transient flag and
the effect on the key that was used. Adapters are small classes built from an `httpx.AsyncClient` and
`Settings` (see `registry.py`); they hold no key themselves: the key pool picks one per call and passes it in.

`meta` is provider bookkeeping the caller persists with the job (`Job.provider_meta`) and hands back to
`fetch_status`: fal's status/response URLs, which must never be rebuilt by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

TaskState = Literal["pending", "running", "success", "fail"]
Outcome = Literal["success", "fail"]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation: already validated by `models.normalise_params` at intake, validated again before a call."""

    model: str
    prompt: str
    image_urls: tuple[str, ...] = ()
    aspect_ratio: str | None = None
    resolution: str | None = None
    output_format: str | None = None
    callback_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific inputs (e.g. google_search)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    task_id: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskStatus:
    state: TaskState
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def final(self) -> bool:
        return self.state in ("success", "fail")


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """A parsed callback. A hint, not proof: confirm with `fetch_status` before trusting the result.

    `needs_fetch` is set when the callback says "done" but carries no usable result (fal's `payload_error`):
    the caller must read the result with `fetch_status`.
    """

    task_id: str
    outcome: Outcome
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None
    needs_fetch: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PreparedInput:
    """The URL a provider will read an input image from, and how it got there (`signed` or `uploaded`)."""

    url: str
    via: Literal["signed", "uploaded"]


@runtime_checkable
class Provider(Protocol):
    """What every adapter implements. `key` is the secret picked by the key pool for this call."""

    name: str

    async def submit(self, req: GenerationRequest, key: str) -> SubmitResult: ...

    async def fetch_status(self, task_id: str, meta: Mapping[str, Any], key: str) -> TaskStatus: ...

    def parse_callback(self, body: bytes) -> CallbackEvent: ...

    async def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> None: ...

    async def prepare_input(
        self,
        url: str | None,
        key: str,
        *,
        data: bytes | None = None,
        filename: str = "input.jpg",
        content_type: str = "image/jpeg",
    ) -> PreparedInput: ...
