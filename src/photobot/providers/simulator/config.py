"""The simulator's knobs: one dataclass, settable at construction and at runtime (POST /_sim/config).

Every fault a real provider shows (or might) has a knob, so tests and benchmarks in other processes can turn
them on and off without restarting the server. `update` validates a partial JSON object against the fields'
types, so a typo in a benchmark script is a 400, not a silently ignored knob.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class SimConfig:
    # auth: None accepts any non-empty bearer; otherwise only these keys (others get 401)
    valid_keys: list[str] | None = None
    exhausted_keys: list[str] = field(default_factory=list)  # createTask → 402
    limited_keys: list[str] = field(default_factory=list)  # createTask → 433 (sub-key over its limit)
    credits: float = 1000.0  # starting balance per key; each success costs `task_cost`
    task_cost: float = 1.0
    # rate limit on createTask, per key (kie: 20 per 10 s); rejected calls get 429
    rate_limit: int = 20
    rate_window_s: float = 10.0
    # faults on createTask
    maintenance: bool = False  # every createTask → 455
    burst_429: int = 0  # the next N createTask calls → 429, whatever the rate
    next_codes: list[int] = field(default_factory=list)  # scripted envelope codes for the next createTask calls
    create_delay_s: float = 0.0  # createTask answers this late (timeout tests)
    http_status: Literal["mirror", "200"] = "mirror"  # HTTP status = body code, or always 200
    msg_field: Literal["msg", "message"] = "msg"
    task_id_style: Literal["hex", "named"] = "hex"  # 32 hex chars or task_<model>_<ms>
    # the generation and its callback
    callback_delay_s: float = 2.0
    callback_jitter_s: float = 0.0  # extra random delay per callback: slow and out-of-order arrivals
    failure_rate: float = 0.0  # share of tasks that fail (501 callback, failCode "500")
    content_block_rate: float = 0.0  # share of tasks refused as prohibited content (failCode "422")
    drop_rate: float = 0.0  # share of callbacks never sent (the task still completes for recordInfo)
    duplicate_callbacks: int = 1  # each callback sent this many times
    credit_fields: Literal["new", "old"] = "new"  # creditsConsumed vs consumeCredits + remainedCredits
    hmac_key: str | None = None  # sign callbacks (X-Webhook-Timestamp / X-Webhook-Signature)
    result_pad_bytes: int = 0  # pad result images to about this size (2 MB / 20 MB benchmarks)
    result_host: str | None = None  # base URL for result and upload URLs (default: the simulator itself)
    long_side: int = 512  # result size for 1K (2K: x1.5, 4K: x2): small and fast, still a real image
    max_files: int = 2000  # result/upload files kept in memory (oldest dropped)
    # fal mode
    fal_keys: list[str] | None = None  # None: any non-empty "Key …"
    fal_payload_error: bool = False  # webhooks carry payload_error instead of the payload
    fal_failure_rate: float = 0.0  # share of fal requests that end in status ERROR
    fal_content_block_rate: float = 0.0  # share of fal requests refused (ERROR, type content_policy_violation)
    fal_user_id: str = "sim-user"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; ValueError names the first unknown or mistyped field."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown knob {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool) and not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if (
                isinstance(current, int | float)
                and not isinstance(current, bool)
                and not isinstance(value, int | float)
            ):
                raise ValueError(f"{name} must be a number")
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hmac_key"] = "set" if self.hmac_key else None
        return data
