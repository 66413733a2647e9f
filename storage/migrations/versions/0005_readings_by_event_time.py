"""readings by event time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 02:20:00.000000

An index on ``readings.ts`` (B-tree on SQLite, BRIN on PostgreSQL) so that ``Store.readings_since`` — the
restart replay and the api role's follower — reads a range instead of scanning the table per chunk.
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index('readings_by_ts', 'readings', ['ts'], unique=False, postgresql_using='brin')


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index('readings_by_ts', table_name='readings')
