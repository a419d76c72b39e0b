"""The operator API (`/v1/admin/…`): one module per resource, each with its routes; admin-scope tokens only."""

from starlette.routing import BaseRoute

from photobot.admin import events, jobs, keys, packs, styles, tokens, users, webhooks

routes: list[BaseRoute] = [
    *events.routes, *users.routes, *styles.routes, *keys.routes, *tokens.routes, *jobs.routes, *packs.routes,
    *webhooks.routes,
]  # fmt: skip

__all__ = ["routes"]
