"""replies, forwards and delivered markers

Revision ID: 0012_replies
Revises: 0011_invitations
Create Date: 2026-12-02 00:51:52.548022

"""

import warnings

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades")

sa.GUID = GUID

# revision identifiers, used by Alembic.
revision = '0012_replies'
down_revision = '0011_invitations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_upgrades()


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_downgrades()


def schema_upgrades() -> None:
    """``message.reply_to_id`` (the quoted message), ``message.forwarded_from_user_id`` (the
    original's author) and ``chat_member.last_delivered_seq`` (existing members: 0)."""
    # See 0006: a SQLite table copy must not cascade to the rows that refer to messages.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table('chat_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_delivered_seq', sa.BigInteger(), server_default='0', nullable=False))

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to_id', sa.GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('forwarded_from_user_id', sa.GUID(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_message_forwarded_from_user_id_user_account'), 'user_account', ['forwarded_from_user_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_message_reply_to_id_message'), 'message', ['reply_to_id'], ['id'], ondelete='SET NULL')
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")


def schema_downgrades() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_message_reply_to_id_message'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_message_forwarded_from_user_id_user_account'), type_='foreignkey')
        batch_op.drop_column('forwarded_from_user_id')
        batch_op.drop_column('reply_to_id')

    with op.batch_alter_table('chat_member', schema=None) as batch_op:
        batch_op.drop_column('last_delivered_seq')
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
