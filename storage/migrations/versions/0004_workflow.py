"""rules generations; where a reopened ticket's new resolution starts

`rules_generations`: every routing-rules file the gateway put in force, in
order (the id is the generation). The edge process that reads the file writes a
row after a successful (re)load; every process of every gateway sharing the
database applies the newest row before it routes or runs a job, so all apply
the same rules and a broken file (never written) changes nothing anywhere.

`tickets.reopen_message_id`: the ticket's newest message when it was last
reopened (0: never). The engineer replies of the current resolution come after
it, so a second closure never falls back on the first one's answer.

Revision ID: 0004_workflow
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

from storage.types import UTCDateTime


revision = '0004_workflow'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rules_generations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=1000), nullable=False, server_default=''),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('published_by', sa.String(length=200), nullable=False, server_default=''),
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reopen_message_id', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('reopen_message_id')
    op.drop_table('rules_generations')
