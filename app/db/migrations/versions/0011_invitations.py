"""group invitations: pending invitations that their invitee accepts or declines

Revision ID: 0011_invitations
Revises: 0010_privacy
Create Date: 2026-12-02 00:53:59.898936

"""

import warnings

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades")

sa.GUID = GUID
sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0011_invitations'
down_revision = '0010_privacy'
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
    """``chat_invitation``: one pending invitation per (group, invitee)."""
    op.create_table('chat_invitation',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('chat_id', sa.GUID(length=16), nullable=False),
    sa.Column('invitee_id', sa.GUID(length=16), nullable=False),
    sa.Column('inviter_id', sa.GUID(length=16), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['chat_id'], ['chat.id'], name=op.f('fk_chat_invitation_chat_id_chat'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invitee_id'], ['user_account.id'], name=op.f('fk_chat_invitation_invitee_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inviter_id'], ['user_account.id'], name=op.f('fk_chat_invitation_inviter_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_invitation'))
    )
    with op.batch_alter_table('chat_invitation', schema=None) as batch_op:
        batch_op.create_index('ix_chat_invitation_invitee_id', ['invitee_id'], unique=False)
        batch_op.create_index('uq_chat_invitation_chat_invitee', ['chat_id', 'invitee_id'], unique=True)


def schema_downgrades() -> None:
    with op.batch_alter_table('chat_invitation', schema=None) as batch_op:
        batch_op.drop_index('uq_chat_invitation_chat_invitee')
        batch_op.drop_index('ix_chat_invitation_invitee_id')

    op.drop_table('chat_invitation')
