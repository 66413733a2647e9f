"""state feed for api followers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:30:00.000000

``state_feed``: one row per stored batch (its readings packed as JSON), written by ingest when
SHOUWANG_STATE_FEED is on, so that `run --role api` follows new readings by batch instead of re-reading the last
15 minutes of readings on every refresh (docs/storage.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('state_feed',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stored_at', sa.BigInteger(), nullable=False),
    sa.Column('readings', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_state_feed_stored_at'), 'state_feed', ['stored_at'], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index(op.f('ix_state_feed_stored_at'), table_name='state_feed')
    op.drop_table('state_feed')
