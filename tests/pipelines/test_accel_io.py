import numpy as np
import pytest

from pavement.errors import AccelerometerError
from pipelines.accel_io import read_accel_csv


def _write(path, header, rate_hz=100.0, n=300):
    t = 1_790_000_000 + np.arange(n) / rate_hz
    lines = [header] + [f"{ti:.3f},0.1,0.2,9.8" for ti in t]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("header", ["t_unix_s,ax_mps2,ay_mps2,az_mps2", "timestamp,X,Y,Z", "time,ax,ay,az"])
def test_reads_known_headers(tmp_path, header):
    log = read_accel_csv(_write(tmp_path / "a.csv", header))
    assert log.accel_mps2.shape == (300, 3)
    assert log.rate_hz == pytest.approx(100.0, rel=1e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no column"),
        ("t_unix_s,ax_mps2,ay_mps2\n1,2,3\n", "az_mps2"),
        ("t_unix_s,ax_mps2,ay_mps2,az_mps2\n1,a,3,4\n2,1,1,1\n", "not numeric"),
        ("t_unix_s,ax_mps2,ay_mps2,az_mps2\n1,1,3,4\n", "holds 1 samples"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "a.csv"
    path.write_text(content)
    with pytest.raises(AccelerometerError, match=message):
        read_accel_csv(path)


def test_too_slow_logger_is_refused(tmp_path):
    with pytest.raises(AccelerometerError, match="at least 50 Hz"):
        read_accel_csv(_write(tmp_path / "a.csv", "t_unix_s,ax_mps2,ay_mps2,az_mps2", rate_hz=20))
