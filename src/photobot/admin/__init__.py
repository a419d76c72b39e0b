"""The operator API (`/v1/admin/…`): one module per resource, each with its routes; admin-scope tokens only."""

from starlette.routing import BaseRoute

from photobot.admin import events, jobs, keys, styles, tokens, users

routes: list[BaseRoute] = [
    *events.routes, *users.routes, *styles.routes, *keys.routes, *tokens.routes, *jobs.routes,
]  # fmt: skip

__all__ = ["routes"]
