"""Covering indexes for `near` searches of public partners (replacing 0002's lat/lon ones).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_partners_category_lat_lon", table_name="partners")
    op.drop_index("ix_partners_lat_lon", table_name="partners")
    op.create_index("ix_partners_near_category", "partners", ["status", "listed", "category", "lat", "lon", "id"])
    op.create_index("ix_partners_near", "partners", ["status", "listed", "lat", "lon", "id"])


def downgrade() -> None:
    op.drop_index("ix_partners_near", table_name="partners")
    op.drop_index("ix_partners_near_category", table_name="partners")
    op.create_index("ix_partners_category_lat_lon", "partners", ["category", "lat", "lon"])
    op.create_index("ix_partners_lat_lon", "partners", ["lat", "lon"])
