"""tickets.address: the support address (brand) a ticket's customer wrote to

Mail to the customer goes out from it, under that [[address]]'s display name;
"" is the default support address (gateway.support_addresses[0]).

Revision ID: 0006_oauth
Revises: 0005_spam
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_oauth'
down_revision = '0005_spam'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=320), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('address')
