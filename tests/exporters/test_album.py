import io
import itertools

import numpy as np
import openpyxl
import pytest
from PIL import Image

from exporters.album import (
    NOT_MEASURED,
    album_jpeg,
    album_photo_frames,
    draw_detections,
    format_video_time,
    pick_album_frames,
    segments_to_album,
    write_album_xlsx,
)
from exporters.form_a import FormContext, segments_to_form_rows
from pavement.detections import DAMAGE_CLASSES, DamageClass, Detections
from pavement.diagnosis import Category
from pavement.errors import ConfigError
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics
from pavement.track import FramePose

D40 = DAMAGE_CLASSES.index(DamageClass.D40)
REPAIR = DAMAGE_CLASSES.index(DamageClass.REPAIR)


def _segment(route: str, offset_m: float, frames: range, partial: bool = False, **metrics) -> Segment:
    return Segment(
        key=SegmentKey(route, Direction.DOWN, 12, offset_m),
        start_lat=40.8,
        start_lon=140.7,
        end_lat=40.801,
        end_lon=140.7,
        partial=partial,
        frame_indices=tuple(frames),
        metrics=SegmentMetrics(**metrics),
    )


def _poses(indices) -> dict[int, FramePose]:
    return {i: FramePose(i, i / 10, 1.7e9 + i / 10, 40.8 + i * 1e-6, 140.7, 30.0, 10.0) for i in indices}


SEGMENTS = [
    _segment("10", 0, range(300, 330, 3), crack_ratio_pct=25.04, iri_mm_per_m=2.5, category=Category.II),
    _segment("3", 100, range(100, 200, 5), pothole_count=2, rut_depth_mm=12.3),
    _segment("3", 0, range(0, 100, 5), partial=True),
]
POSES = _poses(range(0, 400))


def _image(seed: int, w: int = 1280, h: int = 720) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (h, w, 3), dtype=np.uint8)


# --- pure part ---------------------------------------------------------------------------------


def test_sections_in_route_order_with_figures_and_unmeasured():
    sections = segments_to_album(SEGMENTS, POSES, route_names={"3": "国道3号"})
    assert [(s.key.route_no, s.key.offset_m) for s in sections] == [("3", 0), ("3", 100), ("10", 0)]
    assert sections[0].title == "路線 3 国道3号　下り　距離標 12 km + 0 m 〜 12 km + 100 m"
    assert sections[2].title.startswith("路線 10　下り")
    texts = {f.label: f.text for f in sections[2].figures}
    assert texts["ひび割れ率 (%)"] == "25.0" and texts["IRI (mm/m)"] == "2.50" and texts["診断区分"] == "Ⅱ"
    assert texts["わだち掘れ量 (mm)"] == NOT_MEASURED and texts["MCI"] == NOT_MEASURED
    assert {f.label: f.text for f in sections[1].figures}["ポットホール (箇所)"] == "2"
    assert sections[0].remarks == "区間の一部のみ走行"
    assert all(len(s.frames) == 3 for s in sections)
    frame = sections[0].frames[0]
    assert frame.frame_index == 15 and frame.caption.splitlines()[:2] == ["写真番号 15", "動画 00:01.5"]
    unmeasured = segments_to_album(SEGMENTS, POSES, potholes_measured=False)
    assert {f.label: f.text for f in unmeasured[1].figures}["ポットホール (箇所)"] == NOT_MEASURED


def test_frames_chosen_by_the_caller_are_used_as_given():
    chosen = {SEGMENTS[1].key: (190, 105, 999)}  # 999 has no pose
    sections = segments_to_album(SEGMENTS, POSES, chosen_frames=chosen)
    assert [f.frame_index for f in sections[1].frames] == [105, 190]
    assert len(sections[0].frames) == 3  # segments not in it: picked as usual


def test_frames_without_pose_are_not_shown():
    sections = segments_to_album(SEGMENTS[:1], _poses([303]))
    assert [f.frame_index for f in sections[0].frames] == [303]
    assert segments_to_album(SEGMENTS[:1], {})[0].frames == ()


@pytest.mark.parametrize(
    ("frames", "detected", "n", "want"),
    [
        ((), {}, 3, ()),
        ((4, 2), {}, 3, (2, 4)),
        (tuple(range(10)), {}, 3, (1, 5, 8)),  # spread evenly
        (tuple(range(10)), {7: 0.9, 2: 0.5}, 3, (2, 4, 7)),  # two damage frames + one overview
        (tuple(range(10)), {7: 0.9, 2: 0.5, 5: 0.3}, 3, (2, 4, 7)),  # at most n - 1 damage frames
        (tuple(range(10)), {4: 0.9, 5: 0.8}, 3, (0, 4, 9)),  # not the same crack twice
        (tuple(range(0, 100, 5)), {}, 2, (25, 75)),
        (tuple(range(10)), {7: 0.9}, 1, (7,)),
    ],
)
def test_pick_album_frames(frames, detected, n, want):
    detections = {i: Detections([[0, 0, 10, 10]], [D40], [c]) for i, c in detected.items()}
    assert pick_album_frames(frames, detections, n) == want


def test_patching_alone_does_not_make_a_frame_representative():
    detections = {7: Detections([[0, 0, 10, 10]], [REPAIR], [0.99])}
    assert pick_album_frames(tuple(range(10)), detections, 3) == (1, 5, 8)


@pytest.mark.parametrize(
    ("t_s", "text"), [(0, "00:00.0"), (59.96, "01:00.0"), (83.44, "01:23.4"), (3725.2, "1:02:05.2")]
)
def test_format_video_time(t_s, text):
    assert format_video_time(t_s) == text


def test_form_photo_numbers_match_the_album():
    sections = segments_to_album(SEGMENTS, POSES)
    rows = segments_to_form_rows(SEGMENTS, FormContext(), photo_frames=album_photo_frames(sections))
    assert [r.photo_no for r in rows] == [",".join(str(f.frame_index) for f in s.frames) for s in sections]


# --- the workbook ------------------------------------------------------------------------------


def _read_album(path):
    sheet = openpyxl.load_workbook(path).worksheets[0]
    return sheet, {c.coordinate: c.value for row in sheet.iter_rows() for c in row if c.value is not None}


def test_album_round_trip(tmp_path):
    sections = segments_to_album(SEGMENTS, POSES, route_names={"3": "国道3号"})
    wanted = {f.frame_index for s in sections for f in s.frames}
    images = ((i, _image(i)) for i in sorted(wanted | {1, 2}))  # extra frames are skipped
    out = tmp_path / "album.xlsx"
    assert write_album_xlsx(sections, images, out) == []

    sheet, cells = _read_album(out)
    title_rows = [
        r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value in {s.title for s in sections}
    ]
    assert [sheet.cell(r, 1).value for r in title_rows] == [
        s.title for s in sections
    ]  # one block each, in order
    assert sheet.cell(title_rows[0] + 2, 2).value == NOT_MEASURED  # わだち掘れ量 of the first segment
    assert sheet.cell(title_rows[2] + 2, 1).value == pytest.approx(25.04)  # numbers stay numbers

    pictures = sheet._images
    assert len(pictures) == sum(len(s.frames) for s in sections) == 9
    for picture in pictures:
        jpeg = Image.open(io.BytesIO(picture._data()))
        assert jpeg.format == "JPEG" and jpeg.size == (480, 270)
    # each section's photos lie between its title and the next one
    anchor_rows = sorted(p.anchor._from.row + 1 for p in pictures)
    bounds = [*title_rows, sheet.max_row + 1]
    assert [sum(a < r < b for r in anchor_rows) for a, b in itertools.pairwise(bounds)] == [
        3,
        3,
        3,
    ]
    captions = [v for v in cells.values() if isinstance(v, str) and v.startswith("写真番号")]
    assert len(captions) == 9 and all("緯度 40.8" in c for c in captions)

    assert int(sheet.page_setup.paperSize) == int(sheet.PAPERSIZE_A4)
    assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert len(sheet.row_breaks.brk) == len(sections) - 1


def test_missing_images_and_empty_segments_are_captioned(tmp_path):
    sections = segments_to_album([*SEGMENTS[:1], _segment("50", 0, range(0))], POSES)
    first = sections[0].frames[0].frame_index
    out = tmp_path / "a.xlsx"
    missing = write_album_xlsx(sections, {first: _image(0)}, out)
    assert missing == [f.frame_index for f in sections[0].frames[1:]]
    sheet, cells = _read_album(out)
    assert len(sheet._images) == 1
    assert sum(str(v).endswith("\n画像なし") for v in cells.values()) == 2
    assert any(str(v).startswith("代表画像なし") for v in cells.values())


def test_no_sections_is_a_valid_album(tmp_path):
    out = tmp_path / "empty.xlsx"
    assert write_album_xlsx([], [], out) == []
    assert openpyxl.load_workbook(out).worksheets[0]["A1"].value.startswith("画像集")


def test_mask_is_applied_before_encoding():
    image = _image(1, 640, 480)
    jpeg = album_jpeg(image, mask=lambda img: np.zeros_like(img))
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)))
    assert decoded.shape == (360, 480, 3) and decoded.mean() < 3
    with pytest.raises(ConfigError, match="mask changed the image size"):
        album_jpeg(image, mask=lambda img: img[:100])


def test_boxes_are_scaled_with_the_photo():
    image = np.full((720, 1280, 3), 128, np.uint8)
    jpeg = album_jpeg(image, Detections([[640, 360, 1280, 720]], [D40], [0.9]))
    decoded = np.asarray(Image.open(io.BytesIO(jpeg))).astype(int)
    changed = np.abs(decoded - 128).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 236 and ys.min() >= 120  # the box starts at (240, 135) in the 480 px photo
    # the same frame handed over as a 640 px copy, boxes still in the 1280 px video's pixels
    small = np.full((360, 640, 3), 128, np.uint8)
    jpeg = album_jpeg(small, Detections([[640, 360, 1280, 720]], [D40], [0.9]), detections_width_px=1280)
    changed = np.abs(np.asarray(Image.open(io.BytesIO(jpeg))).astype(int) - 128).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 236 and ys.min() >= 120


# --- draw_detections ---------------------------------------------------------------------------


def test_draw_detections_changes_only_box_edges_and_label():
    image = np.full((360, 640, 3), 90, np.uint8)
    x1, y1, x2, y2 = 200, 150, 400, 300
    drawn = draw_detections(image, Detections([[x1, y1, x2, y2]], [D40], [0.87]))
    assert (image == 90).all()  # the input is untouched
    changed = (drawn != image).any(axis=2)
    margin = 4
    interior = changed[y1 + margin : y2 - margin, x1 + margin : x2 - margin]
    assert not interior.any()
    for edge in (changed[y1, x1:x2], changed[y2, x1:x2], changed[y1:y2, x1], changed[y1:y2, x2]):
        assert edge.mean() > 0.9
    outside = changed.copy()
    outside[y1 - margin : y2 + margin, x1 - margin : x2 + margin] = False
    ys, xs = np.nonzero(outside)
    assert len(ys)  # the label sits above the box ...
    assert ys.min() >= y1 - 25 and ys.max() < y1 and xs.min() >= x1 and xs.max() < x1 + 120  # ... at its left


def test_label_goes_inside_a_box_at_the_top_edge():
    image = np.full((200, 300, 3), 90, np.uint8)
    drawn = draw_detections(image, Detections([[50, 0, 250, 150]], [DAMAGE_CLASSES.index("D00")], [0.5]))
    changed = (drawn != image).any(axis=2)
    assert changed[5:15, 55:80].any()  # text inside the box's top-left corner
    assert not changed[40:140, 60:240].any()


def test_draw_detections_without_boxes_and_bad_images():
    image = _image(3, 64, 48)
    assert (draw_detections(image, Detections.empty()) == image).all()
    with pytest.raises(ConfigError, match="BGR image"):
        draw_detections(image[:, :, 0], Detections.empty())
