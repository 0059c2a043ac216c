"""What the gateways on one database share: the data_dir's identity, a check of the secret key

Several gateways on one PostgreSQL database are one installation: attachments, large
spooled mail and OAuth tokens live in the data_dir they share, and the reply addresses
one signs must verify on the others. A gateway started with another folder or another
key is refused in one line (gateway/runtime/installation.py) instead of losing attachments
and refusing its colleagues' reply addresses.

Revision ID: 0010_installation
Revises: 0009_hot_indexes
"""
from alembic import op
import sqlalchemy as sa

from storage.types import UTCDateTime


revision = '0010_installation'
down_revision = '0009_hot_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'installation',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('by', sa.String(length=200), nullable=False, server_default=''),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('installation')
