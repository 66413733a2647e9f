"""export queue instead of insertion numbers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:12:40.000000

Readings no longer carry an insertion number (``readings.seq``, its unique index and the ``counters`` table go):
a store opened with export on queues new readings in ``export_queue`` instead (docs/storage.md). Readings the
exporter had not sent yet (numbered above its cursor) are queued here, in their order, so none is lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('export_queue',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('meter', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Only where an exporter has run (its cursor row exists): an installation that never exported queues nothing.
    op.execute("INSERT INTO export_queue (meter, ts, value) SELECT r.meter, r.ts, r.value FROM readings r "
               "JOIN counters c ON c.name = 'export.influxdb' WHERE r.seq > c.value ORDER BY r.seq")
    # SQLite rebuilds the table in batch mode: keep it WITHOUT ROWID (reflection does not carry that over).
    with op.batch_alter_table('readings', schema=None, table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.drop_index('readings_seq')
        batch_op.drop_column('seq')

    op.drop_table('counters')


def downgrade() -> None:
    """Undo this revision: number the readings in event-time order as 0003 did; the cursor stops before the
    first reading still queued (or after the last one when the queue is empty)."""
    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('readings', schema=None, table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.create_index('readings_seq', ['seq'], unique=True)

    op.execute("UPDATE readings SET seq = n.rn FROM (SELECT meter, ts, row_number() OVER (ORDER BY ts, meter) AS rn "
               "FROM readings) AS n WHERE readings.meter = n.meter AND readings.ts = n.ts")
    op.execute("INSERT INTO counters (name, value) SELECT 'readings.seq', coalesce(max(seq), 0) FROM readings")
    op.execute("INSERT INTO counters (name, value) SELECT 'export.influxdb', coalesce(min(r.seq) - 1, "
               "(SELECT coalesce(max(seq), 0) FROM readings)) FROM readings r JOIN export_queue q "
               "ON q.meter = r.meter AND q.ts = r.ts")
    op.drop_table('export_queue')
