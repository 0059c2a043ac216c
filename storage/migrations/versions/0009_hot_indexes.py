"""Indexes on the foreign keys that removing a ticket looks up

Removing tickets (retention's closed_tickets_days, a customer's erasure) unlinks
what still names them: the spool rows they came from (`spool.ticket_id`), outbound
mail made from those spool rows (`outbox.source_spool_id`), tickets linked or
merged into them (`tickets.linked_ticket_id`, `tickets.merged_into_id`). Without an
index each of those, and each foreign-key check the database makes on DELETE, reads
the whole table: a cost that grows with the history kept
(tests/test_query_plans.py shows the plans).

Revision ID: 0009_hot_indexes
Revises: 0008_ops
"""
from alembic import op


revision = '0009_hot_indexes'
down_revision = '0008_ops'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_spool_ticket_id', 'spool', 'ticket_id'),
    ('ix_outbox_source_spool_id', 'outbox', 'source_spool_id'),
    ('ix_tickets_linked_ticket_id', 'tickets', 'linked_ticket_id'),
    ('ix_tickets_merged_into_id', 'tickets', 'merged_into_id'),
]


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
