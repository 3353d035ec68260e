"""Indexes in the order planning and sending take their rows (the id is the tie-break).

Planning takes invoices in (next_stage_at, invoice_id) order and sending claims pending
messages in (send_at, message_id) order, each up to a batch size. With the id missing from the
index, SQLite sorted every row sharing the first instant on every batch (and, when claiming,
checked each against its customer's earlier messages): quadratic in the number of invoices or
messages when many share an instant, as a stage's invoices do (local midnight per zone).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 22:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_next_stage_at")
        batch_op.create_index("ix_invoices_planning_order", ["next_stage_at", "invoice_id"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_due", ["status", "send_at", "message_id"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_due", ["status", "send_at"])
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_planning_order")
        batch_op.create_index("ix_invoices_next_stage_at", ["next_stage_at"])
