"""Initial schema: customers, invoices, payments, reminders, messages (the outbox),
suppressions, case tasks and the audit log (instants as naive UTC).

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:33:34.217550
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("entry_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_entity_id"), ["entity_id"], unique=False)

    op.create_table(
        "case_tasks",
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_case_tasks")),
        sa.UniqueConstraint("invoice_id", "stage", name=op.f("uq_case_tasks_invoice_id_stage")),
    )
    with op.batch_alter_table("case_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_tasks_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("consent_email", sa.Boolean(), nullable=False),
        sa.Column("consent_sms", sa.Boolean(), nullable=False),
        sa.Column("consent_push", sa.Boolean(), nullable=False),
        sa.Column("consent_call", sa.Boolean(), nullable=False),
        sa.Column("consent_letter", sa.Boolean(), nullable=False),
        sa.Column("opted_out_email", sa.Boolean(), nullable=False),
        sa.Column("opted_out_sms", sa.Boolean(), nullable=False),
        sa.Column("opted_out_push", sa.Boolean(), nullable=False),
        sa.Column("opted_out_call", sa.Boolean(), nullable=False),
        sa.Column("opted_out_letter", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("dispute_opened_at", sa.DateTime(), nullable=True),
        sa.Column("dispute_resolved_at", sa.DateTime(), nullable=True),
        sa.Column("next_stage", sa.String(length=32), nullable=True),
        sa.Column("next_stage_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoices")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_invoices_next_stage_at"), ["next_stage_at"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("tone", sa.String(length=16), nullable=False),
        sa.Column("offer", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("template", sa.String(length=256), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("send_at", sa.DateTime(), nullable=False),
        sa.Column("send_before", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("provider_ref", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("sending_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(), nullable=True),
        sa.Column("parked_at", sa.DateTime(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_messages")),
        sa.UniqueConstraint("invoice_id", "stage", name=op.f("uq_messages_invoice_id_stage")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_customer_order", ["customer_id", "status", "send_at"], unique=False
        )
        batch_op.create_index("ix_messages_due", ["status", "send_at"], unique=False)

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "reminders",
        sa.Column("reminder_id", sa.String(length=128), nullable=False),
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("propensity", sa.Float(), nullable=True),
        sa.Column("send_at", sa.DateTime(), nullable=True),
        sa.Column("policy_version", sa.String(length=128), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("reminder_id", name=op.f("pk_reminders")),
        sa.UniqueConstraint("invoice_id", "stage", name=op.f("uq_reminders_invoice_id_stage")),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminders_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "suppressions",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel", name=op.f("pk_suppressions")),
    )


def downgrade() -> None:

    op.drop_table("suppressions")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminders_customer_id"))

    op.drop_table("reminders")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_invoice_id"))

    op.drop_table("payments")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_due")
        batch_op.drop_index("ix_messages_customer_order")

    op.drop_table("messages")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_next_stage_at"))
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))

    op.drop_table("invoices")
    op.drop_table("customers")
    with op.batch_alter_table("case_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_tasks_customer_id"))

    op.drop_table("case_tasks")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_entity_id"))

    op.drop_table("audit_log")
