"""segments: the map's compact copy (map_json); latest_segments, the latest row of each place

``GET /api/v1/segments?view=map`` answers a table: per segment ``[id, line, *properties,
repair_candidate]``, the line in integer micro-degrees (the first point, then differences). The
writer stores ``[line, *properties]`` as ``segments.map_json`` (``api.queries.map_json``), which
replaces the two GeoJSON texts of 0003. ``latest_segments`` holds, per segment key, the latest row
(``api.queries.latest_rows``'s rule) with a copy of its ``map_json``; the writer keeps it up to date
(``api.queries.refresh_latest``). Existing rows are filled here with frozen copies of both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import json
from itertools import pairwise

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MAP_PROPERTIES = (
    "segment_id", "route_no", "direction", "kp_km", "offset_m", "partial", "category",
    "crack_ratio_pct", "rut_depth_mm", "iri_mm_per_m", "pothole_count", "inspection_date",
)  # fmt: skip
TOLERANCE_DEG = 5e-6
SCALE = 1_000_000
BATCH = 2000


def _map_json(geometry_text: str, properties_text: str) -> str:
    import shapely

    coords = json.loads(geometry_text).get("coordinates") or []
    if len(coords) > 2:
        simple = shapely.LineString(coords).simplify(TOLERANCE_DEG, preserve_topology=False)
        if len(simple.coords) >= 2:
            coords = simple.coords
    points = [(round(p[0] * SCALE), round(p[1] * SCALE)) for p in coords]
    line = list(points[0]) if points else []
    for (lon0, lat0), (lon1, lat1) in pairwise(points):
        line += (lon1 - lon0, lat1 - lat0)
    props = json.loads(properties_text)
    return json.dumps(
        [line, *(props.get(k) for k in MAP_PROPERTIES)], ensure_ascii=False, separators=(",", ":")
    )


LATEST = """
INSERT INTO latest_segments (segment_key, segment_id, route_no, direction, kp_km, offset_m, map_json)
SELECT s.segment_key, s.id, s.route_no, s.direction, s.kp_km, s.offset_m, s.map_json
FROM segments AS s JOIN (
    SELECT c.id AS id, row_number() OVER (
        PARTITION BY c.segment_key ORDER BY c.inspection_date DESC NULLS LAST, c.run_id DESC
    ) AS rank
    FROM segments AS c JOIN runs AS r ON r.id = c.run_id AND r.current_job_id = c.job_id
) AS ranked ON ranked.id = s.id
WHERE ranked.rank = 1
"""


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("map_json", sa.Text(), nullable=True))
    conn = op.get_bind()
    segments = sa.table(
        "segments",
        sa.column("id", sa.Integer),
        sa.column("geometry_json", sa.Text),
        sa.column("properties_json", sa.Text),
        sa.column("map_json", sa.Text),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(segments.c.id, segments.c.geometry_json, segments.c.properties_json)
            .where(segments.c.id > last)
            .order_by(segments.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            segments.update()
            .where(segments.c.id == sa.bindparam("row_id"))
            .values(map_json=sa.bindparam("m")),
            [{"row_id": r.id, "m": _map_json(r.geometry_json, r.properties_json)} for r in rows],
        )
        last = rows[-1].id
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("map_properties_json")
        batch.drop_column("map_geometry_json")
        batch.alter_column("map_json", existing_type=sa.Text(), nullable=False)
    op.create_table(
        "latest_segments",
        sa.Column("segment_key", sa.String(120), primary_key=True),
        sa.Column(
            "segment_id", sa.Integer(), sa.ForeignKey("segments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("route_no", sa.String(40), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("kp_km", sa.Float(), nullable=False),
        sa.Column("offset_m", sa.Float(), nullable=False),
        sa.Column("map_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_latest_segments_segment_id", "latest_segments", ["segment_id"])
    op.create_index(
        "ix_latest_segments_order", "latest_segments", ["route_no", "direction", "kp_km", "offset_m"]
    )
    op.execute(LATEST)


def downgrade() -> None:
    # 0003's code computes the map copies of rows without them when it reads them
    op.drop_table("latest_segments")
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("map_geometry_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("map_properties_json", sa.Text(), nullable=True))
        batch.drop_column("map_json")
