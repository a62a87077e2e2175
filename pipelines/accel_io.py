"""Reading the phone accelerometer log (``accel.csv``).

Format: a header line, then one sample per line: ``t_unix_s,ax_mps2,ay_mps2,az_mps2`` (UTC seconds
since the epoch, phone axes, m/s^2 with gravity included). Common alternative headers are
recognised (``time``/``timestamp``, ``ax``/``x``/``accel_x`` ...). Rates of 50 Hz and more are
accepted. A log may have gaps (the logger paused): the rate is that of the samples between them,
and the IRI stage estimates around the gaps (``pipelines.iri``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pavement.errors import AccelerometerError

MIN_RATE_HZ = 50.0
_ALIASES = {
    "t": ("t_unix_s", "time", "timestamp", "t", "time_s", "unix_time"),
    "x": ("ax_mps2", "ax", "x", "accel_x", "acc_x", "ax (m/s^2)"),
    "y": ("ay_mps2", "ay", "y", "accel_y", "acc_y", "ay (m/s^2)"),
    "z": ("az_mps2", "az", "z", "accel_z", "acc_z", "az (m/s^2)"),
}


@dataclass(frozen=True)
class AccelLog:
    t_unix_s: np.ndarray  # (n,) increasing
    accel_mps2: np.ndarray  # (n, 3) phone axes, gravity included

    @property
    def rate_hz(self) -> float:
        """Samples per second between gaps: the mean interval of those no longer than 5 times the
        median one (a gap of seconds in a 100 Hz log leaves the rate at 100 Hz)."""
        dt = np.diff(self.t_unix_s)
        return float(1.0 / np.mean(dt[dt <= 5 * np.median(dt)]))


def read_accel_csv(path: Path) -> AccelLog:
    """Read and check an accelerometer CSV; errors name the problem and the expected format."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            rows = [r for r in reader if r]
    except OSError as exc:
        raise AccelerometerError(f"cannot read {path}: {exc}") from exc
    columns = {}
    for key, names in _ALIASES.items():
        found = [header.index(n) for n in names if n in header]
        if not found:
            raise AccelerometerError(
                f"{path.name}: no column for {names[0]} (found {header}); expected the header "
                "t_unix_s,ax_mps2,ay_mps2,az_mps2"
            )
        columns[key] = found[0]
    try:
        data = np.array([[float(r[columns[k]]) for k in "txyz"] for r in rows])
    except (ValueError, IndexError) as exc:
        raise AccelerometerError(f"{path.name}: a row is not numeric or is short ({exc})") from exc
    if len(data) < 2:
        raise AccelerometerError(f"{path.name} holds {len(data)} samples; record at least a few seconds")
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    keep = np.concatenate([[True], np.diff(data[:, 0]) > 0])  # drop repeated timestamps
    log = AccelLog(data[keep, 0], data[keep, 1:])
    if log.rate_hz < MIN_RATE_HZ:
        raise AccelerometerError(
            f"{path.name} is sampled at {log.rate_hz:.1f} Hz, too slow: IRI needs at least "
            f"{MIN_RATE_HZ:.0f} Hz (set the logger app to its fastest rate, 100 Hz or more, and record again)"
        )
    return log
