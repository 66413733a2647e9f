"""an index of the unresolved alerts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 18:00:00.000000

``alerts_unresolved``: a partial index on ``alerts.id`` where the status is not resolved, so that reading the open
alerts (every sweep, every page) reads those, not the whole history of alerts, which are never deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index('alerts_unresolved', 'alerts', ['id'], unique=False,
                    sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index('alerts_unresolved', table_name='alerts', sqlite_where=sa.text("status != 'resolved'"),
                  postgresql_where=sa.text("status != 'resolved'"))
