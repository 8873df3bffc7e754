"""accounts sessions, deletion and phone discovery

Revision ID: 0006_accounts_sessions
Revises: 0005_telegram
Create Date: 2026-12-01 20:50:00.000000

"""

import warnings
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import Bool, EncryptedString, EncryptedText, GUID, JsonB, ORA_JSONB, DateTimeUTC, StoredObject, PasswordHash, FernetBackend, TOTPSecret, OneTimeCode
from advanced_alchemy.types.encrypted_string import PGCryptoBackend
from advanced_alchemy.types.password_hash.argon2 import Argon2Hasher
from advanced_alchemy.types.password_hash.passlib import PasslibHasher
from advanced_alchemy.types.password_hash.pwdlib import PwdlibHasher
from sqlalchemy import Text  # noqa: F401


if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades", "data_upgrades", "data_downgrades")

sa.GUID = GUID
sa.Bool = Bool
sa.DateTimeUTC = DateTimeUTC
sa.JsonB = JsonB
sa.ORA_JSONB = ORA_JSONB
sa.EncryptedString = EncryptedString
sa.EncryptedText = EncryptedText
sa.StoredObject = StoredObject
sa.PasswordHash = PasswordHash
sa.Argon2Hasher = Argon2Hasher
sa.PasslibHasher = PasslibHasher
sa.PwdlibHasher = PwdlibHasher
sa.FernetBackend = FernetBackend
sa.PGCryptoBackend = PGCryptoBackend
sa.TOTPSecret = TOTPSecret
sa.OneTimeCode = OneTimeCode

# revision identifiers, used by Alembic.
revision = '0006_accounts_sessions'
down_revision = '0005_telegram'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_upgrades()
        data_upgrades()

def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        data_downgrades()
        schema_downgrades()

def schema_upgrades() -> None:
    """schema upgrade migrations go here."""
    op.create_table('auth_session',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('user_id', sa.GUID(length=16), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_auth_session_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_session'))
    )
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_session_user_id'), ['user_id'], unique=False)

    # SQLite changes a column's nullability by copying the table and dropping the old one;
    # with foreign keys enforced, that DROP would cascade to every row that refers to a user
    # (memberships, tokens, bindings). The pragma only takes effect outside a transaction,
    # which is where SQLite DDL runs here.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_discovery', sa.String(length=10), server_default='everyone', nullable=False))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTimeUTC(timezone=True), nullable=True))
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=True)
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")

def schema_downgrades() -> None:
    """schema downgrade migrations go here."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('phone_discovery')

    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_session_user_id'))

    op.drop_table('auth_session')

def data_upgrades() -> None:
    """Every refresh-token family that exists becomes a session, so that logins made before
    this revision show in the session list and can be revoked."""
    op.execute(
        """
        INSERT INTO auth_session (id, user_id, user_agent, created_at, last_seen_at, revoked_at)
        SELECT family_id, user_id, '', MIN(created_at), MAX(created_at),
               CASE WHEN COUNT(revoked_at) = COUNT(*) THEN MAX(revoked_at) END
        FROM refresh_token
        GROUP BY family_id, user_id
        """
    )

def data_downgrades() -> None:
    """Deleted accounts have no phone: they cannot satisfy NOT NULL again."""
    op.execute("DELETE FROM user_account WHERE phone IS NULL")
