import numpy as np
import pytest

from pavement.boxes import box_iou
from pavement.errors import ConfigError
from pavement.licence_plates import PlateFinderConfig, find_plates
from tests.privacy_scenes import car_with_plate, road_frame


def test_nothing_on_an_empty_road():
    xyxy, score = find_plates(road_frame())
    assert xyxy.shape == (0, 4) and score.shape == (0,)


@pytest.mark.parametrize("plate_w", [24, 40, 80])
def test_a_plate_on_a_car_is_found(plate_w):
    image = road_frame()
    truth = car_with_plate(image, 300, 200, plate_w, "38-61")
    xyxy, score = find_plates(image)
    assert len(xyxy) >= 1
    best = box_iou(np.asarray([truth], float), xyxy)[0]
    assert best.max() > 0.5  # one box sits on the plate
    assert ((score > 0) & (score <= 1)).all()


def test_plates_above_the_horizon_band_are_ignored():
    image = road_frame()
    car_with_plate(image, 300, 20, 40)
    assert len(find_plates(image, PlateFinderConfig(min_center_y_frac=0.3))[0]) == 0


def test_a_large_frame_is_searched_at_full_resolution_up_to_the_working_width():
    image = road_frame(1920, 1080)
    truth = car_with_plate(image, 900, 600, 30)
    xyxy, _ = find_plates(image)
    assert box_iou(np.asarray([truth], float), xyxy).max() > 0.5


@pytest.mark.parametrize(
    "kwargs", [{"min_aspect": 3.0, "max_aspect": 2.0}, {"min_width_px": 2}, {"max_width_frac": 0}]
)
def test_config_refuses_empty_bands(kwargs):
    with pytest.raises(ConfigError):
        PlateFinderConfig(**kwargs)


def test_refuses_a_grey_image():
    with pytest.raises(ConfigError, match="BGR"):
        find_plates(np.zeros((10, 10), np.uint8))
