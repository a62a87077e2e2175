"""latest_segments: each place's item of the map's answer, ready-made (map_item)

``GET /api/v1/segments?view=map`` of the whole network is these texts joined: per place
``[id, line, *properties]`` (``api.queries.MAP_ITEM``: the row id, then the row's ``map_json``
without its opening bracket); the repair flag left the items for one list of ids in the answer
(``repair_candidates``). Existing rows are filled from the id and the copy of ``map_json`` they
hold, which this drops.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("latest_segments") as batch:
        batch.add_column(sa.Column("map_item", sa.Text(), nullable=True))
    op.execute(
        "UPDATE latest_segments "
        "SET map_item = '[' || CAST(segment_id AS VARCHAR) || ',' || substr(map_json, 2)"
    )
    with op.batch_alter_table("latest_segments") as batch:
        batch.drop_column("map_json")
        batch.alter_column("map_item", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("latest_segments") as batch:
        batch.add_column(sa.Column("map_json", sa.Text(), nullable=True))
    op.execute(
        "UPDATE latest_segments SET map_json = "
        "(SELECT s.map_json FROM segments AS s WHERE s.id = latest_segments.segment_id)"
    )
    with op.batch_alter_table("latest_segments") as batch:
        batch.drop_column("map_item")
        batch.alter_column("map_json", existing_type=sa.Text(), nullable=False)
