import pytest

from pavement.errors import ConfigError
from pavement.segments import Direction, SegmentKey, segment_bounds


@pytest.mark.parametrize(
    ("offset", "interval", "bounds"),
    [
        (0.0, 1000.0, (0.0, 100.0)),
        (99.9, 1000.0, (0.0, 100.0)),
        (100.0, 1000.0, (100.0, 100.0)),
        (999.0, 1000.0, (900.0, 100.0)),
        (1000.0, 1000.0, (900.0, 100.0)),
        (1010.0, 1030.0, (900.0, 130.0)),  # a 30 m remainder joins the last segment
        (955.0, 960.0, (900.0, 60.0)),  # a 60 m remainder is a segment of its own
        (920.0, 1060.0, (900.0, 100.0)),
        (1050.0, 1060.0, (1000.0, 60.0)),
        (30.0, 40.0, (0.0, 40.0)),  # a post interval shorter than one step
    ],
)
def test_segment_bounds(offset, interval, bounds):
    assert segment_bounds(offset, interval) == pytest.approx(bounds)


@pytest.mark.parametrize(("offset", "interval"), [(-1.0, 1000.0), (1001.0, 1000.0), (5.0, 0.0)])
def test_segment_bounds_refuses_bad_input(offset, interval):
    with pytest.raises(ConfigError):
        segment_bounds(offset, interval)


def test_key_label_and_order():
    a = SegmentKey("3", Direction.DOWN, 12, 300)
    b = SegmentKey("3", Direction.DOWN, 12, 400)
    assert a.label == "3 下り 12km+300m"
    assert a < b
    with pytest.raises(ConfigError):
        SegmentKey("3", Direction.DOWN, 12, 0, 0)
