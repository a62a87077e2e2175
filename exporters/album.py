"""画像集 (the image album): per 100 m segment its figures and 1-3 representative frames, as xlsx.

``segments_to_album`` is the pure converter (captions, figures, which frames to show; no pixels);
``write_album_xlsx`` the thin writer, which masks (privacy), scales, draws the damage boxes on and
JPEG-encodes each frame and lays the album out for printing on A4, one segment per page.
``draw_detections`` draws the boxes of one image.

Layout of the sheet: per segment a title row (路線, 方向, 距離標), a row of figure names and a row
of values (blank = 未計測), then one row per photo: the photo in columns A-F, its caption
(写真番号 = frame index, video time, lat/lon, damage found) in column G. 写真番号 is what 様式A's
写真番号 column lists (``album_photo_frames`` -> ``segments_to_form_rows(photo_frames=...)``).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from exporters.form_a import CATEGORY_LABEL, save_workbook, segment_order_key
from pavement.detections import DAMAGE_CLASSES, DamageClass, Detections
from pavement.errors import ConfigError, ExportError
from pavement.segments import Segment, SegmentKey
from pavement.track import FramePose

logger = logging.getLogger(__name__)

NOT_MEASURED = "未計測"
PHOTO_WIDTH_PX = 480
#: Photo captions and figures sit in these columns; the photo covers A-F (6 x 80 px = 480 px).
FIGURE_COLUMNS = 6
FIGURE_COLUMN_PX = 80
CAPTION_COLUMN_PX = 230

#: Box colours (BGR) per class: warm for cracks, red for potholes, grey for patching.
CLASS_COLOR_BGR: dict[DamageClass, tuple[int, int, int]] = {
    DamageClass.D00: (0, 215, 255),  # yellow
    DamageClass.D10: (0, 165, 255),  # orange
    DamageClass.D20: (255, 0, 255),  # magenta
    DamageClass.D40: (0, 0, 230),  # red
    DamageClass.REPAIR: (200, 200, 200),  # light grey
}
_DAMAGE_CLASS_IDS = np.array([i for i, c in enumerate(DAMAGE_CLASSES) if c is not DamageClass.REPAIR])


@dataclass(frozen=True)
class AlbumFigure:
    """One indicator of a segment: its name with unit, value (None = not measured), Excel format."""

    label: str
    value: float | int | str | None
    number_format: str = "General"

    @property
    def text(self) -> str:
        if self.value is None:
            return NOT_MEASURED
        if isinstance(self.value, str):
            return self.value
        decimals = len(self.number_format.partition(".")[2])
        return f"{self.value:.{decimals}f}"


@dataclass(frozen=True)
class AlbumFrame:
    """One photo of a segment: where and when it was taken, and the damage found on it
    (boxes in the frame's own pixels; None = detection was not run)."""

    frame_index: int
    t_video_s: float
    lat: float
    lon: float
    detections: Detections | None = field(default=None, compare=False)

    @property
    def caption(self) -> str:
        lines = [
            f"写真番号 {self.frame_index}",
            f"動画 {format_video_time(self.t_video_s)}",
            f"緯度 {self.lat:.6f}",
            f"経度 {self.lon:.6f}",
        ]
        if self.detections is not None:
            lines.append(f"検出 {damage_summary(self.detections)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class AlbumSection:
    """The album's block for one 100 m segment."""

    key: SegmentKey
    title: str  # 路線, 方向, 距離標 in one line
    figures: tuple[AlbumFigure, ...]
    remarks: str
    frames: tuple[AlbumFrame, ...]


def format_video_time(t_s: float) -> str:
    """Seconds from the start of the video as ``mm:ss.s`` (``h:mm:ss.s`` past an hour)."""
    tenths = round(max(t_s, 0.0) * 10)
    minutes, tenths_in_minute = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    seconds = f"{tenths_in_minute // 10:02d}.{tenths_in_minute % 10}"
    return f"{hours}:{minutes:02d}:{seconds}" if hours else f"{minutes:02d}:{seconds}"


def format_kilometre_post(kp_km: float, offset_m: float) -> str:
    """距離標 + 追加距離, e.g. ``12 km + 300 m``."""
    return f"{kp_km:g} km + {offset_m:.0f} m"


def damage_summary(detections: Detections) -> str:
    """Boxes per class, e.g. ``D00×2, D40×1``; ``なし`` for none."""
    if not len(detections):
        return "なし"
    counts = np.bincount(detections.class_id, minlength=len(DAMAGE_CLASSES))
    return ", ".join(f"{c}×{n}" for c, n in zip(DAMAGE_CLASSES, counts, strict=True) if n)


def _clean(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def pick_album_frames(
    frame_indices: Sequence[int], detections: Mapping[int, Detections] | None = None, n: int = 3
) -> tuple[int, ...]:
    """Up to ``n`` frames of a segment to show, in frame order.

    The frames with the most damage found (sum of box confidences, patching not counted) come
    first, at most ``n - 1`` of them so one overview frame stays, and none right beside another
    pick (the same crack seen twice); the rest are the frames farthest from those picked (ties:
    nearest the segment's middle). Without damage: ``n`` frames spread evenly over the segment.
    """
    if n < 1:
        raise ConfigError(f"frames per segment must be at least 1, got {n}")
    candidates = sorted(set(frame_indices))
    if len(candidates) <= n:
        return tuple(candidates)
    gap = max(1, len(candidates) // (2 * n))  # in positions along the segment's frames
    picked: list[int] = []  # positions in ``candidates``
    if detections:
        scores = {}
        for pos, i in enumerate(candidates):
            dets = detections.get(i)
            if dets is not None and len(dets):
                score = float(dets.confidence[np.isin(dets.class_id, _DAMAGE_CLASS_IDS)].sum())
                if score > 0:
                    scores[pos] = score
        for pos in sorted(scores, key=lambda q: (-scores[q], q)):
            if len(picked) == max(n - 1, 1):
                break
            if all(abs(pos - q) > gap for q in picked):
                picked.append(pos)
    if not picked:
        picked = [int((j + 0.5) * len(candidates) / n) for j in range(n)]
    middle = (len(candidates) - 1) / 2
    while len(picked) < n:
        rest = [q for q in range(len(candidates)) if q not in picked]
        picked.append(max(rest, key=lambda q: (min(abs(q - p) for p in picked), -abs(q - middle), -q)))
    return tuple(sorted(candidates[q] for q in picked))


def segments_to_album(
    segments: Sequence[Segment],
    poses: Mapping[int, FramePose],
    *,
    detections: Mapping[int, Detections] | None = None,
    route_names: Mapping[str, str] | None = None,
    chosen_frames: Mapping[SegmentKey, Sequence[int]] | None = None,
    frames_per_segment: int = 3,
    potholes_measured: bool = True,
) -> list[AlbumSection]:
    """One section per segment in route / direction / 距離標 order, each with up to
    ``frames_per_segment`` frames (``pick_album_frames``) of those that have a pose.

    ``poses``: frame index -> where and when it was taken (the geotag stage's frames).
    ``detections``: frame index -> boxes (None when detection was not run). ``route_names``:
    路線番号 -> 路線名 (from the route ledger). ``chosen_frames``: segment key -> the frames to show,
    when the caller picked them already (e.g. while streaming the video); used as given, less
    frames without a pose. ``potholes_measured=False`` shows the pothole count as 未計測 (a
    segment's count is 0 when nobody looked).
    """
    route_names = route_names or {}
    sections = []
    for seg in sorted(segments, key=lambda s: segment_order_key(s.key)):
        k, m = seg.key, seg.metrics
        route = f"路線 {k.route_no}" + (f" {route_names[k.route_no]}" if route_names.get(k.route_no) else "")
        title = (
            f"{route}　{k.direction}　距離標 {format_kilometre_post(k.kp_km, k.offset_m)}"
            f" 〜 {format_kilometre_post(k.kp_km, k.offset_m + k.length_m)}"
        )
        figures = (
            AlbumFigure("ひび割れ率 (%)", _clean(m.crack_ratio_pct), "0.0"),
            AlbumFigure("わだち掘れ量 (mm)", _clean(m.rut_depth_mm), "0.0"),
            AlbumFigure("IRI (mm/m)", _clean(m.iri_mm_per_m), "0.00"),
            AlbumFigure("ポットホール (箇所)", m.pothole_count if potholes_measured else None, "0"),
            AlbumFigure("MCI", _clean(m.mci), "0.0"),
            AlbumFigure("診断区分", CATEGORY_LABEL[m.category] if m.category else None),
        )
        remarks = ["区間の一部のみ走行"] if seg.partial else []
        if m.coverage_pct is not None and not math.isnan(m.coverage_pct):
            remarks.append(f"調査範囲 {m.coverage_pct:.0f}%")
        if chosen_frames is not None and k in chosen_frames:
            shown = tuple(sorted({i for i in chosen_frames[k] if i in poses}))
        else:
            shown = pick_album_frames(
                [i for i in seg.frame_indices if i in poses], detections, frames_per_segment
            )
        frames = tuple(
            AlbumFrame(
                frame_index=i,
                t_video_s=poses[i].t_video_s,
                lat=poses[i].lat,
                lon=poses[i].lon,
                detections=None if detections is None else detections.get(i, Detections.empty()),
            )
            for i in shown
        )
        sections.append(AlbumSection(k, title, figures, "、".join(remarks), frames))
    return sections


def album_photo_frames(sections: Sequence[AlbumSection]) -> dict[SegmentKey, tuple[int, ...]]:
    """Segment key -> the frame indices the album shows: 様式A's 写真番号 (``photo_frames``)."""
    return {s.key: tuple(f.frame_index for f in s.frames) for s in sections}


# ---------------------------------------------------------------------------------------------
# Pixels: boxes on an image, and the album's JPEG of a frame.
# ---------------------------------------------------------------------------------------------


def _check_image(image: np.ndarray, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ConfigError(f"{what}: expected a BGR image (H, W, 3) uint8, got shape {shape} {dtype}")


def draw_detections(image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image_bgr`` (H, W, 3) uint8 with each box outlined in its class colour and
    labelled ``CODE confidence`` (e.g. ``D40 0.87``) just above it (inside, when at the top edge).

    Line width and text size follow the image size (2 px lines and ~11 px text on a 480 x 270 photo).
    """
    _check_image(image_bgr, "draw_detections")
    out = np.ascontiguousarray(image_bgr).copy()
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 150))
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.35, min(height, width) / 700)
    boxes = np.rint(detections.xyxy).astype(np.int64)
    for box, cls, conf in zip(boxes, detections.classes, detections.confidence, strict=True):
        color = CLASS_COLOR_BGR[cls]
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(out, p1, p2, color, thickness)
        label = f"{cls.value} {conf:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(label, font, font_scale, 1)
        label_h = text_h + baseline + 2
        top = p1[1] - label_h if p1[1] - label_h >= 0 else p1[1]  # above the box, else inside it
        left = min(max(p1[0], 0), max(width - text_w - 2, 0))
        cv2.rectangle(out, (left, top), (left + text_w + 2, top + label_h), color, -1)
        dark_text = sum(w * c for w, c in zip((0.114, 0.587, 0.299), color, strict=True)) > 128
        cv2.putText(
            out,
            label,
            (left + 1, top + text_h + 1),
            font,
            font_scale,
            (0, 0, 0) if dark_text else (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out


def album_jpeg(
    image_bgr: np.ndarray,
    detections: Detections | None = None,
    mask: Callable[[np.ndarray], np.ndarray] | None = None,
    width_px: int = PHOTO_WIDTH_PX,
    quality: int = 85,
    detections_width_px: int | None = None,
) -> bytes:
    """One album photo: ``mask`` (privacy) at the size given, scaled to ``width_px`` wide (aspect
    kept), boxes drawn at that size (thin lines stay legible), JPEG-encoded.

    The boxes are in pixels of a frame ``detections_width_px`` wide (default: this image's width;
    give the video's width when the image is a reduced copy of the frame).
    """
    _check_image(image_bgr, "album photo")
    if mask is not None:
        masked = mask(image_bgr)
        _check_image(masked, "the privacy mask's output")
        if masked.shape != image_bgr.shape:
            raise ConfigError(f"the privacy mask changed the image size {image_bgr.shape} -> {masked.shape}")
        image_bgr = masked
    height, width = image_bgr.shape[:2]
    scale = width_px / width
    size = (width_px, max(1, round(height * scale)))
    small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if detections is not None and len(detections):
        box_scale = width_px / (detections_width_px or width)
        scaled = Detections(detections.xyxy * box_scale, detections.class_id, detections.confidence)
        small = draw_detections(small, scaled)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise ExportError("JPEG encoding of an album photo failed")
    return buf.tobytes()


# ---------------------------------------------------------------------------------------------
# The workbook.
# ---------------------------------------------------------------------------------------------


def _column_width(px: int) -> float:
    """Excel column width (characters of the default font) for a width in pixels."""
    return round((px - 5) / 7, 2)


def write_album_xlsx(
    sections: Sequence[AlbumSection],
    images: Mapping[int, np.ndarray] | Iterable[tuple[int, np.ndarray]],
    path: Path,
    *,
    mask: Callable[[np.ndarray], np.ndarray] | None = None,
    width_px: int = PHOTO_WIDTH_PX,
    detections_width_px: int | None = None,
    title: str = "画像集 (路面点検)",
) -> list[int]:
    """Write the album to ``path`` (xlsx, A4 portrait, fit to the page width, one segment a page).

    ``images``: frame index -> BGR image (H, W, 3) uint8, a mapping or (index, image) pairs in any
    order, e.g. ``pipelines.video_motion.iter_frames(video, wanted)``; frames no section shows are
    skipped, each shown frame is encoded as soon as it arrives (memory stays small). The images
    must be privacy-masked already, or ``mask`` (``image -> image``, same size) is applied to each
    before anything else. The detection boxes are in pixels of frames ``detections_width_px``
    wide (default: each image's own width; give the video's width when the images are reduced
    copies). Returns the frame indices that had no image (captioned 画像なし).
    Raises ``ExportError`` when the file cannot be written.
    """
    try:
        import PIL  # noqa: F401 - openpyxl embeds images through Pillow
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise ImportError("writing the 画像集 needs Pillow: pip install pillow") from exc
    import openpyxl
    from openpyxl.drawing.image import Image as XlImage
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.pagebreak import Break

    frames = {f.frame_index: f for s in sections for f in s.frames}
    jpegs: dict[int, bytes] = {}
    pairs = images.items() if isinstance(images, Mapping) else images
    for index, image in pairs:
        if index in frames and index not in jpegs:
            jpegs[index] = album_jpeg(
                image, frames[index].detections, mask, width_px, detections_width_px=detections_width_px
            )

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "画像集"
    n_cols = FIGURE_COLUMNS + 1
    caption_col = n_cols
    for c in range(1, FIGURE_COLUMNS + 1):
        sheet.column_dimensions[get_column_letter(c)].width = _column_width(
            max(FIGURE_COLUMN_PX, width_px // FIGURE_COLUMNS)
        )
    sheet.column_dimensions[get_column_letter(caption_col)].width = _column_width(CAPTION_COLUMN_PX)
    thin = Side(style="thin", color="999999")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    title_fill = PatternFill("solid", fgColor="DDEBF7")
    wrap_center = Alignment(horizontal="center", vertical="center", wrap_text=True)

    sheet.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    row = 3
    missing: list[int] = []
    for n, section in enumerate(sections):
        if n:
            sheet.row_breaks.append(Break(id=row - 1))  # each segment starts a new printed page
        cell = sheet.cell(row=row, column=1, value=section.title)
        cell.font = Font(bold=True, size=12)
        cell.fill = title_fill
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=n_cols)
        sheet.row_dimensions[row].height = 21
        for c, figure in enumerate(section.figures, start=1):
            head = sheet.cell(row=row + 1, column=c, value=figure.label)
            head.font, head.alignment, head.border = Font(bold=True, size=9), wrap_center, box
            value = NOT_MEASURED if figure.value is None else figure.value
            cell = sheet.cell(row=row + 2, column=c, value=value)
            cell.alignment, cell.border, cell.number_format = wrap_center, box, figure.number_format
        head = sheet.cell(row=row + 1, column=caption_col, value="備考")
        head.font, head.alignment, head.border = Font(bold=True, size=9), wrap_center, box
        cell = sheet.cell(row=row + 2, column=caption_col, value=section.remarks or None)
        cell.alignment, cell.border = wrap_center, box
        sheet.row_dimensions[row + 1].height = 27
        row += 3
        if not section.frames:
            sheet.cell(row=row, column=1, value="代表画像なし (この区間の解析フレームがありません)")
            row += 1
        for frame in section.frames:
            data = jpegs.get(frame.frame_index)
            caption = frame.caption
            if data is None:
                missing.append(frame.frame_index)
                caption += "\n画像なし"
                sheet.row_dimensions[row].height = 80
            else:
                picture = XlImage(io.BytesIO(data))
                sheet.add_image(picture, f"A{row}")
                sheet.row_dimensions[row].height = picture.height * 0.75 + 6  # points; 4 px gap
            cell = sheet.cell(row=row, column=caption_col, value=caption)
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            cell.font = Font(size=9)
            row += 1
        row += 1
    if missing:
        logger.warning("album: no image for frames %s (captioned 画像なし)", missing)

    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = "portrait"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages as it takes
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.page_margins.top = sheet.page_margins.bottom = 0.5
    sheet.print_options.horizontalCentered = True
    sheet.oddFooter.center.text = "&P / &N"
    sheet.print_area = f"A1:{get_column_letter(n_cols)}{max(row, 2)}"
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    save_workbook(book, path)
    return missing
