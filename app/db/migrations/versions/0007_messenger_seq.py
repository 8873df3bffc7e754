"""messenger: per-chat message sequence (catch-up cursor) and client message ids

Revision ID: 0007_messenger_seq
Revises: 0006_accounts_sessions
Create Date: 2026-12-01 21:00:00.000000

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
revision = '0007_messenger_seq'
down_revision = '0006_accounts_sessions'
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
    with op.batch_alter_table('chat', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seq', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('client_id', sa.String(length=64), nullable=True))
    # Existing messages are numbered in id order, the order history showed them in.
    op.execute(
        "UPDATE message SET seq = (SELECT COUNT(*) FROM message AS earlier "
        "WHERE earlier.chat_id = message.chat_id AND earlier.id <= message.id)"
    )
    op.execute(
        "UPDATE chat SET last_seq = COALESCE((SELECT MAX(seq) FROM message "
        "WHERE message.chat_id = chat.id), 0)"
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index('uq_message_chat_id_seq', ['chat_id', 'seq'], unique=True)
        batch_op.create_index('uq_message_client_id', ['chat_id', 'sender_id', 'client_id'], unique=True)

def schema_downgrades() -> None:
    """schema downgrade migrations go here."""
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('uq_message_client_id')
        batch_op.drop_index('uq_message_chat_id_seq')
        batch_op.drop_column('client_id')
        batch_op.drop_column('seq')
    with op.batch_alter_table('chat', schema=None) as batch_op:
        batch_op.drop_column('last_seq')

def data_upgrades() -> None:
    """Add any optional data upgrade migrations here!"""

def data_downgrades() -> None:
    """Add any optional data downgrade migrations here!"""
