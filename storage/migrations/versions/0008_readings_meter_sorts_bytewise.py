"""readings' meter sorts bytewise on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 17:30:00.000000

PostgreSQL: ``readings.meter`` in the "C" collation, so the (meter, ts) key compares bytes instead of going through
the locale (about 12 % less server CPU per stored reading, bench/pg_write.py). The column's values do not change,
but PostgreSQL rebuilds the key under an exclusive lock: on a large table this takes a while (docs/deploy.md,
"Upgrades"). SQLite compares bytes already; nothing changes there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('readings', 'meter', type_=sa.String(length=64, collation="C"),
                        existing_type=sa.String(length=64), existing_nullable=False)


def downgrade() -> None:
    """Undo this revision: the database's default collation again."""
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('readings', 'meter', type_=sa.String(length=64, collation="default"),
                        existing_type=sa.String(length=64, collation="C"), existing_nullable=False)
