"""audio chunks

Revision ID: 0009_audio_chunks
Revises: 0008_achievements_rules
Create Date: 2026-12-01 20:39:13.439932

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
revision = '0009_audio_chunks'
down_revision = '0008_achievements_rules'
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

# Bytes per chunk; app/domain/audio/models.py CHUNK_BYTES.
CHUNK_BYTES = 256 * 1024


def schema_upgrades() -> None:
    """The MP3 bytes move from one audio_record.mp3 value into audio_chunk rows, so that
    storing and serving a record never holds the whole file in memory."""
    op.create_table('audio_chunk',
    sa.Column('record_id', sa.GUID(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('record_id', 'seq', name=op.f('pk_audio_chunk'))
    )
    copy_records_into_chunks()
    # SQLite drops a column by recreating the table; dropping the old audio_record would
    # cascade to the chunks, so their foreign key is added only afterwards.
    with op.batch_alter_table('audio_record', schema=None) as batch_op:
        batch_op.drop_column('mp3')
    with op.batch_alter_table('audio_chunk', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_audio_chunk_record_id_audio_record'),
            'audio_record',
            ['record_id'],
            ['id'],
            ondelete='CASCADE',
        )


def copy_records_into_chunks() -> None:
    """Existing records, one chunk at a time (substr counts from 1 on bytea and BLOB)."""
    bind = op.get_bind()
    record = sa.table('audio_record', sa.column('id', sa.GUID(length=16)), sa.column('mp3', sa.LargeBinary()))
    chunk = sa.table(
        'audio_chunk',
        sa.column('record_id', sa.GUID(length=16)),
        sa.column('seq', sa.Integer()),
        sa.column('data', sa.LargeBinary()),
    )
    rows = bind.execute(sa.select(record.c.id, sa.func.length(record.c.mp3))).all()
    for record_id, size in rows:
        for seq in range(max(1, -(-int(size or 0) // CHUNK_BYTES))):
            data = bind.execute(
                sa.select(sa.func.substr(record.c.mp3, seq * CHUNK_BYTES + 1, CHUNK_BYTES)).where(
                    record.c.id == record_id
                )
            ).scalar()
            bind.execute(sa.insert(chunk).values(record_id=record_id, seq=seq, data=bytes(data or b'')))


def schema_downgrades() -> None:
    """The chunks joined back into audio_record.mp3."""
    with op.batch_alter_table('audio_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mp3', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    record = sa.table('audio_record', sa.column('id', sa.GUID(length=16)), sa.column('mp3', sa.LargeBinary()))
    chunk = sa.table(
        'audio_chunk',
        sa.column('record_id', sa.GUID(length=16)),
        sa.column('seq', sa.Integer()),
        sa.column('data', sa.LargeBinary()),
    )
    for (record_id,) in bind.execute(sa.select(record.c.id)).all():
        parts = bind.execute(
            sa.select(chunk.c.data).where(chunk.c.record_id == record_id).order_by(chunk.c.seq)
        ).scalars()
        bind.execute(
            sa.update(record).where(record.c.id == record_id).values(mp3=b''.join(bytes(p) for p in parts))
        )
    with op.batch_alter_table('audio_record', schema=None) as batch_op:
        batch_op.alter_column('mp3', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table('audio_chunk')


def data_upgrades() -> None:
    """Add any optional data upgrade migrations here!"""

def data_downgrades() -> None:
    """Add any optional data downgrade migrations here!"""
