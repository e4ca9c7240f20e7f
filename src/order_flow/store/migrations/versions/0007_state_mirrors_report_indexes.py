"""state mirrors and report indexes

Orders and invoices carry their instance's state (``orders.state``, ``invoices.state``,
kept by the engine in the transaction of each state change: engine.core.StateMirror),
filled here from the instances. Partial / covering indexes for the reports over a
million orders (docs/benchmarks.md, bench/reports). Hold tasks made before the engine
kept a task's title fields in ``tasks.data`` get their hold reason code from the title.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import order_flow.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies (a migration must not change when the code does).
SALES = "state IN ('approved', 'completed', 'closed')"
OPEN = "kind = 'blue' AND number IS NOT NULL AND payment_status <> 'paid'"
RED = "kind = 'red'"
SUBMITTED = "kind = 'transition' AND to_state = 'submitted'"
HOLD_REASONS = ("DATA", "DUPLICATE", "CREDIT", "STOCK_SHORT", "CUSTOMER_BLOCKED", "SPECIAL")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=64), nullable=True))
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=64), nullable=True))

    for table in ("orders", "invoices"):
        op.execute(
            f"UPDATE {table} SET state = (SELECT i.state FROM workflow_instances i"
            f" WHERE i.id = {table}.instance_id) WHERE instance_id IS NOT NULL"
        )

    tasks = sa.table(
        "tasks",
        sa.column("state", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("title", sa.String()),
        sa.column("data", order_flow.store.types.JSONType),
    )
    for code in HOLD_REASONS:
        op.execute(
            tasks.update()
            .where(
                tasks.c.state == "on_hold",
                tasks.c.kind == "human",
                tasks.c.data.is_(None),
                tasks.c.title.like(f"%: {code}"),
            )
            .values(data={"hold_reason": code})
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_sales",
            ["created_at"],
            unique=False,
            postgresql_include=[
                "customer_id",
                "created_by",
                "total_net",
                "total_tax",
                "total_gross",
            ],
            postgresql_where=sa.text(SALES),
            sqlite_where=sa.text(SALES),
        )
        batch_op.create_index(
            "ix_orders_sales_id",
            ["id"],
            unique=False,
            postgresql_include=["created_at", "customer_id"],
            postgresql_where=sa.text(SALES),
            sqlite_where=sa.text(SALES),
        )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_order_id")
        batch_op.create_index(
            "ix_order_lines_order_product",
            ["order_id", "product_id"],
            unique=False,
            postgresql_include=["qty", "net", "tax", "gross", "tax_rate"],
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoices_open",
            ["id"],
            unique=False,
            postgresql_include=["order_id", "total_gross", "due_date", "issued_at"],
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )
        batch_op.create_index(
            "ix_invoices_red",
            ["original_id"],
            unique=False,
            postgresql_include=["total_gross"],
            postgresql_where=sa.text(RED),
            sqlite_where=sa.text(RED),
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_invoice_id")
        batch_op.create_index(
            "ix_payments_invoice_paid",
            ["invoice_id"],
            unique=False,
            postgresql_include=["paid_on", "amount"],
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_submitted",
            ["instance_id", "at"],
            unique=False,
            postgresql_where=sa.text(SUBMITTED),
            sqlite_where=sa.text(SUBMITTED),
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_submitted")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_invoice_paid")
        batch_op.create_index("ix_payments_invoice_id", ["invoice_id"], unique=False)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_red")
        batch_op.drop_index("ix_invoices_open")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_order_product")
        batch_op.create_index("ix_order_lines_order_id", ["order_id"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_sales_id")
        batch_op.drop_index("ix_orders_sales")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("state")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("state")
