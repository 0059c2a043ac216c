"""IMAP sync times for health checks; an audit log that outlives tickets

`imap_state.synced_at` / `last_error`: when a mailbox was last drained to the
end without error, and the last error since, so `/readyz` and `supportgw health`
(any process) can tell a stuck mailbox from a quiet one.

`audit_log`: operations that are not about one living ticket (a customer's data
erased, the retention job's removals). Rows carry counts and references, never
personal data: they must survive the erasure they record.

Revision ID: 0008_ops
Revises: 0007_desk
"""
from alembic import op
import sqlalchemy as sa

from storage.types import JSONType, UTCDateTime


revision = '0008_ops'
down_revision = '0007_desk'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('synced_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=False, server_default=''))
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('actor', sa.String(length=320), nullable=False, server_default='system'),
        sa.Column('data', JSONType(), nullable=False),
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('synced_at')
