"""chat list: the (chat_id, seq) index carries sender_id and deleted_at

Revision ID: 0013_chat_list
Revises: 0012_replies
Create Date: 2026-12-02 02:00:00.000000

"""

import warnings

from alembic import op

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades")

# revision identifiers, used by Alembic.
revision = '0013_chat_list'
down_revision = '0012_replies'
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


def _rebuild_seq_index(include: str) -> None:
    """Build the new unique index beside the old one, then swap the names, so uniqueness
    holds throughout (PostgreSQL only: SQLite has no INCLUDE and keeps the plain index)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE UNIQUE INDEX uq_message_chat_id_seq_next ON message (chat_id, seq){include}")
    op.execute("DROP INDEX uq_message_chat_id_seq")
    op.execute("ALTER INDEX uq_message_chat_id_seq_next RENAME TO uq_message_chat_id_seq")


def schema_upgrades() -> None:
    """Unread counts are a range of ``seq`` filtered on the sender and deletion: with both
    in the index, PostgreSQL counts them without reading the messages."""
    _rebuild_seq_index(" INCLUDE (sender_id, deleted_at)")


def schema_downgrades() -> None:
    _rebuild_seq_index("")
