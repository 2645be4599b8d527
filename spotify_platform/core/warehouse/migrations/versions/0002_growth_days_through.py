"""kpi_growth_accounting.days_through: the days each period counted.

A period whose count differs from the days holding aggregates now is computed again, with
every later one. Rows stored before this revision have none, so the first run after it
computes every period once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 05:26:02.536874
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "kpi_growth_accounting",
        sa.Column(
            "days_through",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="Days with account aggregates up to the period's end when it was computed",
        ),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): Alembic's batch mode would copy the table on SQLite,
    # and the rename back fails while `bi_growth_accounting` names it.
    op.execute("ALTER TABLE kpi_growth_accounting DROP COLUMN days_through")
