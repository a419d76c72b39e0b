"""Photobot: the backend of AI photo booths."""
