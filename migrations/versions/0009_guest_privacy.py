"""Guest consent, privacy and moderation: event settings (consent, moderation, per-guest cap, retention) and the
job's consent, approval, hiding and forgetting times

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from photobot.db.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JOB_TIMES = ("consent_at", "approved_at", "hidden_at", "forgotten_at")


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_required", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("consent_text", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("moderation", sa.String(length=10), nullable=False, server_default="auto"))
        batch_op.add_column(sa.Column("max_photos_per_guest", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in JOB_TIMES:
            batch_op.add_column(sa.Column(name, UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in reversed(JOB_TIMES):
            batch_op.drop_column(name)
    with op.batch_alter_table("events", schema=None) as batch_op:
        for name in ("retention_days", "max_photos_per_guest", "moderation", "consent_text", "consent_required"):
            batch_op.drop_column(name)
