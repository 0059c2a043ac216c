"""the suspended area: why a spooled message was suspended, and its whole verdict

A message that is not a person asking for help (spam, a forged sender, a robot that
refers to none of our tickets, a blocked sender) stays in the spool with status
'suspended': kept, visible and releasable, never a ticket and never answered.
`reason` is the main reason (for filters and counts), `verdict` every reason, the
spam engine's answer and the audit trail of releases and drops.

Revision ID: 0005_spam
Revises: 0004_workflow
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_spam'
down_revision = '0004_workflow'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('verdict', sa.JSON(), nullable=True))
        batch_op.create_index('ix_spool_reason', ['reason'], unique=False)
        # the SMTP client as the listener saw it: what a spam engine (and SPF) judges the mail by
        batch_op.add_column(sa.Column('client_ip', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('helo', sa.String(length=255), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.drop_column('helo')
        batch_op.drop_column('client_ip')
        batch_op.drop_index('ix_spool_reason')
        batch_op.drop_column('verdict')
        batch_op.drop_column('reason')
