"""audit columns on players and achievements (advanced-alchemy's UUIDv7AuditBase)

Revision ID: 0015_audit_columns
Revises: 0014_player_stats
Create Date: 2026-12-02 04:49:05

Players and achievements now take id, created_at and updated_at from UUIDv7AuditBase, which
adds ``updated_at`` and the ORM's insert sentinel. Existing rows keep their data:
``updated_at`` starts as their ``created_at``, then becomes NOT NULL.
"""

import warnings

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades", "data_upgrades", "data_downgrades")

sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0015_audit_columns'
down_revision = '0014_player_stats'
branch_labels = None
depends_on = None

TABLES = ('achievement', 'achievement_player')


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
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=True))
        op.execute(sa.text(f'UPDATE {table} SET updated_at = created_at'))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('updated_at', existing_type=sa.DateTimeUTC(timezone=True), nullable=False)

def schema_downgrades() -> None:
    """schema downgrade migrations go here."""
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('updated_at')
            batch_op.drop_column('sa_orm_sentinel')

def data_upgrades() -> None:
    """Add any optional data upgrade migrations here!"""

def data_downgrades() -> None:
    """Add any optional data migration here!"""
