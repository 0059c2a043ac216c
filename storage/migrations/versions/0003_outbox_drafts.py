"""outbox rows may hold a draft instead of bytes

Queueing a mail renders it and fixes every header value in the transaction that
caused it, but writing the MIME bytes was most of the cost of ingesting a new
ticket (four mails each). A row now keeps that draft (JSON) with `raw` NULL, and
the dispatcher composes the bytes when it sends.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('draft', sa.JSON(), nullable=True))
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # drafts cannot become NOT NULL bytes without composing them; refuse rather than lose mail
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM outbox WHERE raw IS NULL")).scalar():
        raise RuntimeError("outbox rows still hold drafts: send them ('supportgw outbox send') before downgrading")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('draft')
