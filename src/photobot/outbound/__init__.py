"""Outbound webhooks: signed messages (Standard Webhooks 1.0) to the operator's own systems. docs/webhooks.md.

Not to be confused with `photobot.webhooks`, which *receives* provider and Mercado Pago callbacks.

- `outbox.py`: `publish(session, type, data, …)` writes a message and one pending delivery per endpoint that hears
  it, inside the caller's transaction (the job ending, the credit settling, the purchase approved), so a crash
  after the commit can never lose it and a rolled-back change never sends one;
- `endpoints.py`: the rules of an endpoint (which URLs are acceptable, which secrets sign, who hears what);
- `queue.py`: the deliveries as a queue (claim with a lease, record each attempt, retry on the schedule, disable an
  endpoint failing for days);
- `sender.py`: the worker's loop that signs, sends and records; and tells the operator about disabled endpoints.

Operator actions (add, list, disable, rotate, deliveries, replay) are `photobot.services.webhooks`, shared by
`photobot webhooks …` and `/v1/admin/webhooks`. This package's `__init__` imports nothing, so the job and credit
code can import `outbox` without pulling in the sender.
"""
