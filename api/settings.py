"""Service settings: environment variables with the ``PAVEMENT_`` prefix, or command-line options.

``Settings`` refuses unsafe combinations (development mode, with its well-known token, on a
non-loopback address). ``get_settings()`` is the cached default; the app and the worker take a
``Settings`` argument, so tests build their own.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pavement.errors import ConfigError

GIB = 1024**3
MIB = 1024**2
#: The token development mode accepts as an admin (never outside ``--dev``).
DEV_TOKEN = "dev"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
#: 地理院タイル (standard map) of the Geospatial Information Authority of Japan: the browser loads them.
GSI_TILES = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAVEMENT_", extra="ignore")

    data_dir: Path = Field(
        Path("pavement-data"), description="uploads, run folders, results, the SQLite file"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///DATA_DIR/pavement.db"
    )
    dev: bool = Field(False, description="development mode: the token 'dev' is an admin; loopback only")
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = Field(50 * GIB, gt=0, description="largest file one upload may announce")
    max_chunk_bytes: int = Field(256 * MIB, gt=0, description="largest body of one PATCH request")
    lease_s: float = Field(
        120.0, gt=0, description="a running job whose worker is silent this long is retried"
    )
    heartbeat_s: float = Field(15.0, gt=0, description="how often a worker renews its lease")
    max_attempts: int = Field(3, ge=1, description="tries of one job before it is failed")
    poll_s: float = Field(2.0, gt=0, description="how often an idle worker looks for jobs")
    upload_expiry_h: float = Field(72.0, gt=0, description="unfinished uploads older than this are deleted")
    ray_address: str | None = Field(
        None,
        description="hand each job to a Ray cluster: its address ('ray://head:10001', 'auto'), or 'local' "
        "for a cluster on this machine; unset: the worker processes jobs itself",
    )
    tile_url: str = Field(GSI_TILES, description="background map tiles of the web map; '' for none")
    tile_attribution: str = GSI_ATTRIBUTION

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if self.heartbeat_s >= self.lease_s:
            raise ValueError(
                f"heartbeat_s ({self.heartbeat_s}) must be shorter than lease_s ({self.lease_s})"
            )
        if self.dev and not is_loopback(self.host):
            raise ValueError(
                f"development mode (its well-known token 'dev') only listens on 127.0.0.1; "
                f"drop --dev to serve on {self.host}"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'pavement.db').resolve()}"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_settings(**values: object) -> Settings:
    """``Settings`` from the environment with ``values`` (command-line options) on top; a bad value
    raises ``ConfigError`` naming it, so the CLI prints one line."""
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"service settings: {problems}") from None


@lru_cache
def get_settings() -> Settings:
    return make_settings()
