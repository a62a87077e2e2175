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


@pytest.mark.parametrize("rate_hz", [10.0, 20.0])
def test_too_slow_logger_is_refused_naming_both_rates(tmp_path, rate_hz):
    with pytest.raises(AccelerometerError) as err:
        read_accel_csv(_write(tmp_path / "a.csv", "t_unix_s,ax_mps2,ay_mps2,az_mps2", rate_hz=rate_hz))
    message = str(err.value)
    assert f"sampled at {rate_hz:.1f} Hz" in message and "at least 50 Hz" in message
    assert "fastest rate" in message and "\n" not in message


def test_a_gap_does_not_lower_the_rate(tmp_path):
    path = _write(tmp_path / "a.csv", "t_unix_s,ax_mps2,ay_mps2,az_mps2", n=3000)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1001] + lines[1301:]) + "\n")  # 3 s missing from a 30 s log
    log = read_accel_csv(path)
    assert len(log.t_unix_s) == 2700 and np.max(np.diff(log.t_unix_s)) == pytest.approx(3.01)
    assert log.rate_hz == pytest.approx(100.0, rel=1e-3)  # (n - 1) / span would say 90 Hz
