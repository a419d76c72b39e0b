"""Event style selection, style preview images, jobs without an input photo

- events.styles: the ids of the styles an event offers, in the order its kiosk shows them (empty: every active
  style of the catalogue);
- styles.preview_key: the storage key of an example image the kiosk shows for the style;
- jobs.input_key becomes nullable: a text-to-image style (a model that takes no input image) makes a job from
  the prompt alone.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("styles", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("styles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preview_key", sa.String(length=300), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("input_key", existing_type=sa.String(length=300), nullable=True)


def downgrade() -> None:
    # a job without an input photo cannot be represented before this revision: it keeps an empty key
    op.execute("UPDATE jobs SET input_key = '' WHERE input_key IS NULL")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("input_key", existing_type=sa.String(length=300), nullable=False)
    with op.batch_alter_table("styles", schema=None) as batch_op:
        batch_op.drop_column("preview_key")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("styles")
