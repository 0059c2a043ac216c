"""tickets merged into another

`tickets.merged_into_id`: the ticket this one was merged into (`#merge`, `supportgw tickets
merge`), NULL for a live ticket. Its messages, participants, history and thread ids moved to
the survivor; anything that still names the merged ticket (its signed reply addresses, its
subject reference) is followed to the survivor by gateway.desk.threads.

Revision ID: 0007_desk
Revises: 0006_oauth
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_desk'
down_revision = '0006_oauth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_foreign_key('fk_tickets_merged_into', 'tickets', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tickets_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into_id')
