"""escalations carry a version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:30:00.000000

``escalations.version``: bumped by every write of the row. The escalation tick writes a step only where the row is
still the version it read, so a reopen or a tier set by a person between the tick's read and its write is not
written over (the tick's whole write is dropped, and the next tick reads the row again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('version')
