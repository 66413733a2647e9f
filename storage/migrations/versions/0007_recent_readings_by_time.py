"""recent readings by time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:00:00.000000

``readings_recent``: SQLite stores new readings here, keyed (ts, meter), and folds the older ones into
``readings`` in (meter, ts) order (storage/sql_recent.py, docs/decisions.md). Existing readings stay where they are.
PostgreSQL keeps writing to ``readings``; the table is there, empty, so that both backends share one schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('readings_recent',
    sa.Column('meter', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('ts', 'meter'),
    sqlite_with_rowid=False
    )


def downgrade() -> None:
    """Undo this revision: the recent readings go back into ``readings`` first."""
    op.execute("INSERT INTO readings (meter, ts, value) SELECT meter, ts, value FROM readings_recent "
               "ORDER BY meter, ts")
    op.drop_table('readings_recent')
