"""order submitted_at and the cycle-time indexes

``orders.submitted_at``: when the order was first submitted, kept by the engine with
the state copy (engine.core.StateMirror.first_entered), filled here from the audit
trail. With it and two narrow indexes, the cycle-time report reads the approved
orders and their first issued invoices in id order, without the audit trail.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import order_flow.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APPROVED = "approved_at IS NOT NULL"
ISSUED_BLUE = "kind = 'blue' AND issued_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("submitted_at", order_flow.store.types.UTCDateTime(), nullable=True)
        )
    op.execute(
        "UPDATE orders SET submitted_at = (SELECT min(a.at) FROM audit_events a"
        " WHERE a.instance_id = orders.instance_id AND a.kind = 'transition'"
        " AND a.to_state = 'submitted') WHERE instance_id IS NOT NULL"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_approved",
            ["id"],
            unique=False,
            postgresql_include=["created_at", "submitted_at", "approved_at", "instance_id"],
            postgresql_where=sa.text(APPROVED),
            sqlite_where=sa.text(APPROVED),
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoices_first_issue",
            ["order_id", "issued_at"],
            unique=False,
            postgresql_where=sa.text(ISSUED_BLUE),
            sqlite_where=sa.text(ISSUED_BLUE),
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_first_issue")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_approved")
        batch_op.drop_column("submitted_at")
