"""payments: credit packs, Mercado Pago purchases, purchase rows in the credit ledger

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-03 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import photobot.db.models

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", photobot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("pack_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("preference_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("checkout_url", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("payment_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("payment_status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("reversed_credits", sa.Integer(), nullable=False),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("alert_pending", sa.Boolean(), nullable=False),
        sa.Column("alerted_at", photobot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_attempts", sa.Integer(), nullable=False),
        sa.Column("next_check_at", photobot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", photobot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", photobot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", photobot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", photobot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(event_id IS NULL) <> (user_id IS NULL)", name="ck_purchases_one_owner"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"]),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"]),
        sa.ForeignKeyConstraint(["token_id"], ["client_tokens.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.create_index("ix_purchases_status_check", ["status", "next_check_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_purchases_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_purchases_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_purchases_next_check_at"), ["next_check_at"], unique=False)

    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.alter_column(
            "reason",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=10),
            type_=sqlmodel.sql.sqltypes.AutoString(length=20),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("purchase_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("payment_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_credit_ledger_purchase_id"), ["purchase_id"], unique=False)
        batch_op.create_unique_constraint("uq_ledger_reason_payment", ["reason", "payment_id"])
        batch_op.create_foreign_key("fk_credit_ledger_purchase_id", "purchases", ["purchase_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_constraint("fk_credit_ledger_purchase_id", type_="foreignkey")
        batch_op.drop_constraint("uq_ledger_reason_payment", type_="unique")
        batch_op.drop_index(batch_op.f("ix_credit_ledger_purchase_id"))
        batch_op.drop_column("payment_id")
        batch_op.drop_column("purchase_id")
        batch_op.alter_column(
            "reason",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=20),
            type_=sqlmodel.sql.sqltypes.AutoString(length=10),
            existing_nullable=False,
        )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchases_next_check_at"))
        batch_op.drop_index(batch_op.f("ix_purchases_user_id"))
        batch_op.drop_index(batch_op.f("ix_purchases_event_id"))
        batch_op.drop_index("ix_purchases_status_check")
    op.drop_table("purchases")
    op.drop_table("packs")
