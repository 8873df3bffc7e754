"""privacy: who may add me to a group, and blocking users

Revision ID: 0010_privacy
Revises: 0009_audio_chunks
Create Date: 2026-12-01 22:15:00.000000

"""

import warnings

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades")

sa.GUID = GUID
sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0010_privacy'
down_revision = '0009_audio_chunks'
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
    """``user_account.group_adds`` (existing accounts get the default, contacts) and the
    ``user_block`` pairs."""
    # See 0006: a SQLite table copy must not cascade to the rows that refer to users.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_adds', sa.String(length=10), server_default='contacts', nullable=False))
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
    op.create_table('user_block',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('blocker_id', sa.GUID(length=16), nullable=False),
    sa.Column('blocked_id', sa.GUID(length=16), nullable=False),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['blocker_id'], ['user_account.id'], name=op.f('fk_user_block_blocker_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['blocked_id'], ['user_account.id'], name=op.f('fk_user_block_blocked_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_block')),
    sa.UniqueConstraint('blocker_id', 'blocked_id', name='uq_user_block_pair')
    )
    with op.batch_alter_table('user_block', schema=None) as batch_op:
        batch_op.create_index('ix_user_block_blocked_id', ['blocked_id'], unique=False)


def schema_downgrades() -> None:
    with op.batch_alter_table('user_block', schema=None) as batch_op:
        batch_op.drop_index('ix_user_block_blocked_id')
    op.drop_table('user_block')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('group_adds')
