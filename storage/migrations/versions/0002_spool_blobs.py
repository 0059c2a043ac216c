"""spool rows may keep their bytes in a file

A message above `gateway.spool_inline_max` is streamed to the spool blob store
(data_dir/spool-blobs, named by its sha256) instead of being held in memory and
written into the row; `spool.raw` is NULL for such a row.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('spool', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
