"""segments: the web map's lean copy of each segment (simplified geometry, a few properties)

``GET /api/v1/segments?view=map`` answers from two text columns the writer fills
(``api.queries.map_geometry_json`` / ``map_properties_json``): the line within 0.5 m of the stored
one with 6 decimals (0.1 m), and the properties the map colours, filters and labels by. Existing
rows are filled here with a frozen copy of those functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 18:00:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAP_PROPERTIES = (
    "segment_id", "route_no", "direction", "kp_km", "offset_m", "partial", "category",
    "crack_ratio_pct", "rut_depth_mm", "iri_mm_per_m", "pothole_count", "inspection_date",
)  # fmt: skip
TOLERANCE_DEG = 5e-6
DECIMALS = 6
BATCH = 2000


def _geometry(text: str) -> str:
    import shapely

    geometry = json.loads(text)
    coords = geometry.get("coordinates") or []
    if geometry.get("type") == "LineString" and len(coords) > 2:
        simple = shapely.LineString(coords).simplify(TOLERANCE_DEG, preserve_topology=False)
        if len(simple.coords) >= 2:
            coords = [list(c) for c in simple.coords]
    if geometry.get("type") == "LineString":
        coords = [[round(c, DECIMALS) for c in point[:2]] for point in coords]
        geometry = {"type": "LineString", "coordinates": coords}
    return json.dumps(geometry, separators=(",", ":"))


def _properties(text: str) -> str:
    props = json.loads(text)
    return json.dumps({k: props.get(k) for k in MAP_PROPERTIES}, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("map_geometry_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("map_properties_json", sa.Text(), nullable=True))
    conn = op.get_bind()
    segments = sa.table(
        "segments",
        sa.column("id", sa.Integer),
        sa.column("geometry_json", sa.Text),
        sa.column("properties_json", sa.Text),
        sa.column("map_geometry_json", sa.Text),
        sa.column("map_properties_json", sa.Text),
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
            .values(
                map_geometry_json=sa.bindparam("geometry"), map_properties_json=sa.bindparam("properties")
            ),
            [
                {
                    "row_id": r.id,
                    "geometry": _geometry(r.geometry_json),
                    "properties": _properties(r.properties_json),
                }
                for r in rows
            ],
        )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("map_properties_json")
        batch.drop_column("map_geometry_json")
