"""The one error tree of the project.

::

    PavementError
    ├── InputError              bad or unusable input; the message says how to fix it
    │   ├── VideoUnreadable     video missing, corrupt, truncated or of an unknown codec
    │   ├── GpsTrackError       GPS log empty, unparsable, no overlap with the video, ...
    │   ├── RouteLedgerError    route ledger without 距離標 calibration points, bad geometry, ...
    │   ├── AccelerometerError  accelerometer log unreadable, too slow, without gravity, ...
    │   ├── DepthMapError       depth-map folder without its index, maps of the wrong kind or size, ...
    │   └── ImageUnreadable     an image file that cannot be decoded
    ├── ConfigError             an invalid parameter (negative length, unknown class, ...)
    ├── CalibrationError        camera profile or mount that cannot be used
    ├── ModelError              model file missing, sha256 mismatch with its card, bad outputs
    └── ExportError             an output that cannot be written (template, path, ...)

Only ``api/`` turns these into HTTP answers; the CLI prints ``TypeName: message`` and exits 1.
"""


class PavementError(Exception):
    """Base of every error the project raises on purpose."""


class InputError(PavementError):
    """Input data that cannot be used as it is."""


class VideoUnreadable(InputError):
    """A video that cannot be opened or decoded."""


class GpsTrackError(InputError):
    """A GPS log that cannot be turned into a usable track."""


class RouteLedgerError(InputError):
    """A route ledger (centrelines with 距離標) that cannot be used."""


class AccelerometerError(InputError):
    """An accelerometer log that cannot be used."""


class DepthMapError(InputError):
    """A folder of depth maps (phone LiDAR / ToF) that cannot be used."""


class ImageUnreadable(InputError):
    """An image file that cannot be decoded."""


class ConfigError(PavementError):
    """A parameter outside its valid range."""


class CalibrationError(PavementError):
    """A camera profile or mount that cannot be used."""


class ModelError(PavementError):
    """A model file that is missing, altered (sha256) or gives unusable outputs."""


class ExportError(PavementError):
    """An output that cannot be written."""
