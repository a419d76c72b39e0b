"""The operator API (`/v1/admin/…`): see `admin/routes.py`."""

from photobot.admin.routes import routes

__all__ = ["routes"]
