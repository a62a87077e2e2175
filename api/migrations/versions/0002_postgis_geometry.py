"""PostgreSQL: PostGIS, and the segments' geometry as a PostGIS column with a GiST index

``segments.geom`` is computed by the database from ``geometry_json`` (a stored generated column),
so the writers stay the same on every database; the map's bbox filter uses its index
(``api.queries``). SQLite keeps the four bounding-box columns only: nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import ProgrammingError

from pavement.errors import ConfigError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ensure_postgis(conn: sa.Connection) -> None:
    if conn.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")):
        return
    database = conn.scalar(sa.text("SELECT current_database()"))
    if not conn.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")):
        raise ConfigError(
            f"the PostgreSQL server of database {database!r} has no PostGIS; install it on the server "
            "(Debian: apt-get install postgresql-postgis), then start the service again"
        )
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except ProgrammingError as exc:
        raise ConfigError(
            f"database {database!r} needs PostGIS and this user may not add it ({exc.orig}); "
            f"ask a superuser to run 'CREATE EXTENSION postgis' in {database!r}"
        ) from None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _ensure_postgis(conn)
    op.execute(
        "ALTER TABLE segments ADD COLUMN geom geometry(Geometry, 4326) "
        "GENERATED ALWAYS AS (ST_SetSRID(ST_GeomFromGeoJSON(geometry_json), 4326)) STORED"
    )
    op.execute("CREATE INDEX ix_segments_geom ON segments USING gist (geom)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_segments_geom")
    op.execute("ALTER TABLE segments DROP COLUMN geom")
