"""ASGI entry point for uvicorn (`photobot serve`, or `uvicorn photobot.asgi:app`): settings from the environment."""

from __future__ import annotations

import os

from photobot.app import create_app
from photobot.logs import configure_logging
from photobot.settings import load_settings

settings = load_settings()
configure_logging(settings)
app = create_app(settings, run_dispatcher=os.environ.get("PHOTOBOT_RUN_DISPATCHER", "1") != "0")
