"""様式A (the MLIT pavement inspection record sheet): one row per 100 m segment and lane.

Template-driven: the writer reads a template workbook whose first sheet has the data type of
each column in row 1 (テキスト / 数値 / リストから選択) and the column names in row 2, with
data-validation lists on the list columns. Fields are mapped by header name (``FIELD_BY_HEADER``),
so the official workbook of any version can be dropped in: unknown headers stay blank (and are
reported), and a value outside a column's list is an ``ExportError`` naming the column.

``segments_to_form_rows`` is the pure converter; ``write_form_xlsx`` the thin writer.

Batch export (``pavement export-form``): ``read_form_xlsx`` reads a run's form back by header name,
``merge_form_rows`` orders the rows of several runs by 路線番号 (numerically), 上下 and 距離標 and
keeps the newest row of a segment that more than one run surveyed (see its docstring).

The project's default template (``templates/form_a_default.xlsx``) is made by
``templates/make_form_a_template.py``; its later columns (after the start point) are not
confirmed from an official source.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path

from pavement.diagnosis import Category
from pavement.errors import ExportError, InputError
from pavement.segments import Segment, SegmentKey

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).parent / "templates" / "form_a_default.xlsx"
HEADER_ROW = 2
FIRST_DATA_ROW = 3

#: Roman numerals as the MLIT forms print them.
CATEGORY_LABEL = {Category.I: "Ⅰ", Category.II: "Ⅱ", Category.III: "Ⅲ"}


@dataclass(frozen=True)
class FormContext:
    """What the segments do not know: the office, the road's ledger data, the inspection."""

    regional_bureau: str = ""  # 地整
    office_no: int | None = None  # 事務所番号
    office: str = ""  # 事務所
    branch_no: int | None = None  # 出張所番号
    branch: str = ""  # 出張所
    prefecture: str = ""  # 都道府県
    prefecture_or_city: str = ""  # 都道府県・政令市
    road_status: str = "現道"  # 現道・旧道・新道
    route_name: str = ""  # 路線名
    road_class: str = "B"  # 分類 A or B
    municipality: str = ""  # 市町村 (start and end, when not known per segment)
    lane_code: int = 1  # 車線; 91 = whole carriageway
    pavement_type: str = "アスファルト"
    inspection_date: date | None = None
    inspection_method: str = "スマートフォン動画解析"


@dataclass(frozen=True)
class FormRow:
    """One 様式A row: every value already in the form's units and codes."""

    regional_bureau: str
    office_no: int | None
    office: str
    branch_no: int | None
    branch: str
    prefecture: str
    prefecture_or_city: str
    route_no: str
    road_status: str
    route_name: str
    road_class: str
    start_municipality: str
    start_kp_km: float
    start_offset_m: float
    start_lat: float
    start_lon: float
    end_municipality: str
    end_kp_km: float
    end_offset_m: float
    end_lat: float
    end_lon: float
    direction: str
    lane_code: int
    pavement_type: str
    inspection_date: str
    inspection_method: str
    crack_ratio_pct: float | None
    rut_depth_mm: float | None
    iri_mm_per_m: float | None
    category: str | None
    action: str
    photo_no: str
    remarks: str


#: Header name (as in row 2 of the template) -> FormRow field.
FIELD_BY_HEADER: dict[str, str] = {
    "地整": "regional_bureau",
    "事務所番号": "office_no",
    "事務所": "office",
    "出張所番号": "branch_no",
    "出張所": "branch",
    "都道府県": "prefecture",
    "都道府県・政令市": "prefecture_or_city",
    "路線番号": "route_no",
    "現道・旧道・新道 区分": "road_status",
    "路線名": "route_name",
    "分類 (AorB)": "road_class",
    "市町村(起点)": "start_municipality",
    "距離標(起点)": "start_kp_km",
    "距離標からの追加距離(起点)": "start_offset_m",
    "緯度(起点)": "start_lat",
    "経度(起点)": "start_lon",
    "市町村(終点)": "end_municipality",
    "距離標(終点)": "end_kp_km",
    "距離標からの追加距離(終点)": "end_offset_m",
    "緯度(終点)": "end_lat",
    "経度(終点)": "end_lon",
    "上下": "direction",
    "車線": "lane_code",
    "舗装種別": "pavement_type",
    "点検年月日": "inspection_date",
    "点検方法": "inspection_method",
    "ひび割れ率(%)": "crack_ratio_pct",
    "わだち掘れ量(mm)": "rut_depth_mm",
    "IRI(mm/m)": "iri_mm_per_m",
    "診断区分": "category",
    "措置": "action",
    "写真番号": "photo_no",
    "備考": "remarks",
}


def _normalise_header(text: object) -> str:
    """NFKC folds full-width brackets and digits; whitespace is not significant."""
    return "".join(unicodedata.normalize("NFKC", str(text or "")).split())


_FIELD_BY_NORMALISED = {_normalise_header(k): v for k, v in FIELD_BY_HEADER.items()}


def _round(value: float | None, ndigits: int) -> float | None:
    return None if value is None else round(value, ndigits)


def route_sort_key(route_no: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of route numbers: 3 before 10 before 101, "7-2" (枝番) after "7"."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", str(route_no)))


def segment_order_key(key: SegmentKey) -> tuple:
    """Route (natural order), direction, 距離標, 追加距離: the order of every form and album."""
    return (route_sort_key(key.route_no), str(key.direction), key.kp_km, key.offset_m)


def segments_to_form_rows(
    segments: list[Segment],
    context: FormContext,
    photo_frames: Mapping[SegmentKey, Sequence[int]] | None = None,
) -> list[FormRow]:
    """One row per segment, in route / direction / 距離標 order; the end point is the start of
    the next 100 m (距離標 + 追加距離 + length).

    写真番号 lists the frame indices of the segment's photos: ``photo_frames[key]`` where given
    (the frames the 画像集 shows, ``exporters.album.album_photo_frames``), else its first three frames.
    """
    rows = []
    for seg in sorted(segments, key=lambda s: segment_order_key(s.key)):
        k, m = seg.key, seg.metrics
        photos = photo_frames[k] if photo_frames is not None and k in photo_frames else seg.frame_indices[:3]
        remarks = ["区間の一部のみ走行"] if seg.partial else []
        if m.coverage_pct is not None and m.coverage_pct < 50:
            remarks.append(f"調査範囲 {m.coverage_pct:.0f}%")
        if m.pothole_count:
            remarks.append(f"ポットホール {m.pothole_count} 箇所")
        rows.append(
            FormRow(
                regional_bureau=context.regional_bureau,
                office_no=context.office_no,
                office=context.office,
                branch_no=context.branch_no,
                branch=context.branch,
                prefecture=context.prefecture,
                prefecture_or_city=context.prefecture_or_city,
                route_no=k.route_no,
                road_status=context.road_status,
                route_name=context.route_name,
                road_class=context.road_class,
                start_municipality=context.municipality,
                start_kp_km=k.kp_km,
                start_offset_m=round(k.offset_m, 1),
                start_lat=round(seg.start_lat, 6),
                start_lon=round(seg.start_lon, 6),
                end_municipality=context.municipality,
                end_kp_km=k.kp_km,
                end_offset_m=round(k.offset_m + k.length_m, 1),
                end_lat=round(seg.end_lat, 6),
                end_lon=round(seg.end_lon, 6),
                direction=str(k.direction),
                lane_code=context.lane_code,
                pavement_type=context.pavement_type,
                inspection_date=context.inspection_date.isoformat() if context.inspection_date else "",
                inspection_method=context.inspection_method,
                crack_ratio_pct=_round(m.crack_ratio_pct, 1),
                rut_depth_mm=_round(m.rut_depth_mm, 1),
                iri_mm_per_m=_round(m.iri_mm_per_m, 2),
                category=CATEGORY_LABEL[m.category] if m.category else None,
                action="",
                photo_no=",".join(str(i) for i in photos),
                remarks="、".join(remarks),
            )
        )
    return rows


def _as_number(text: str) -> int | float | str:
    """A number column gets a number where the text is one (route 3, not "3"); else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _validation_lists(sheet) -> dict[int, list[str]]:
    """Column index -> allowed values, from the sheet's list data validations (inline lists)."""
    from openpyxl.utils.cell import range_boundaries

    lists: dict[int, list[str]] = {}
    for dv in sheet.data_validations.dataValidation:
        if dv.type != "list" or not dv.formula1 or not dv.formula1.startswith('"'):
            continue  # lists that refer to cell ranges are not checked here
        allowed = [v.strip() for v in dv.formula1.strip('"').split(",")]
        for cell_range in str(dv.sqref).split():
            min_col, _, max_col, _ = range_boundaries(cell_range)
            for col in range(min_col, max_col + 1):
                lists[col] = allowed
    return lists


def write_form_xlsx(rows: list[FormRow], path: Path, template: Path = DEFAULT_TEMPLATE) -> list[str]:
    """Fill a copy of ``template`` with ``rows`` from row 3 and save it to ``path``.

    Returns the template headers that have no field (left blank). Raises ``ExportError`` for a
    missing or malformed template, a value outside a column's list, or an unwritable path.
    """
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - openpyxl is a base dependency
        raise ImportError("writing 様式A needs openpyxl: pip install openpyxl") from exc

    try:
        book = openpyxl.load_workbook(template)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ExportError(f"cannot read the 様式A template {template}: {exc}") from exc
    sheet = book.worksheets[0]
    headers = [cell.value for cell in sheet[HEADER_ROW]]
    columns = {i + 1: _FIELD_BY_NORMALISED.get(_normalise_header(h)) for i, h in enumerate(headers) if h}
    if not any(columns.values()):
        raise ExportError(
            f"template {template} has no known column names in row {HEADER_ROW} "
            f"(found {[h for h in headers if h][:5]}...); row 2 must hold the 様式A headers"
        )
    unknown = [str(headers[c - 1]) for c, f in columns.items() if f is None]
    if unknown:
        logger.warning("様式A template columns left blank (no field for them): %s", ", ".join(unknown))
    allowed = _validation_lists(sheet)
    numeric = {c for c in columns if _normalise_header(sheet.cell(row=1, column=c).value) == "数値"}
    for r, row in enumerate(rows, start=FIRST_DATA_ROW):
        for col, field in columns.items():
            if field is None:
                continue
            value = getattr(row, field)
            if col in numeric and isinstance(value, str):
                value = _as_number(value)
            if value is not None and col in allowed and str(value) not in allowed[col]:
                raise ExportError(
                    f"様式A column '{headers[col - 1]}' allows {allowed[col]}, got {value!r} in row {r}; "
                    "adjust the value mapping or the template's list"
                )
            sheet.cell(row=r, column=col, value=value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    save_workbook(book, path)
    return unknown


def save_workbook(book, path: Path) -> None:
    """Save an openpyxl workbook to a temporary file beside ``path``, then rename it over ``path``:
    a reader (or a crash) never sees half a workbook. ``ExportError`` when it cannot be written."""
    path = Path(path)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename and hide the form from colleagues.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.xlsx")
    try:
        book.save(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {exc}") from exc


def form_row_field_names() -> list[str]:
    return [f.name for f in fields(FormRow)]


# ---------------------------------------------------------------------------------------------
# Batch export: read the forms of several runs back and merge them into one.
# ---------------------------------------------------------------------------------------------

#: Columns a run's form must have to be merged: they identify and order the rows.
KEY_FIELDS = ("route_no", "direction", "start_kp_km", "start_offset_m")
_HEADER_BY_FIELD = {v: k for k, v in FIELD_BY_HEADER.items()}


@dataclass(frozen=True)
class RunRows:
    """The 様式A rows of one processed run; ``source`` names it in messages (its folder)."""

    source: str
    rows: tuple[FormRow, ...]


@dataclass(frozen=True)
class DuplicateSegment:
    """A segment (and lane) that more than one row of the runs describes."""

    label: str  # e.g. "路線 3 下り 12 km + 300 m 車線 1"
    sources: tuple[str, ...]  # the runs that have it, in the order given
    kept: tuple[str, ...]  # the runs whose row is in the merged form
    n_rows: int
    n_kept: int
    same_date: bool = False  # the newest rows share their 点検年月日: the run given later won

    @property
    def message(self) -> str:
        what = f"{self.label}: {self.n_rows} rows ({', '.join(self.sources)})"
        if self.n_kept == self.n_rows:
            return f"{what}; all kept"
        why = "the run given later (same 点検年月日)" if self.same_date else "the newest"
        return f"{what}; kept {why}: {', '.join(self.kept)}"


@dataclass(frozen=True)
class FormMerge:
    rows: tuple[FormRow, ...]
    duplicates: tuple[DuplicateSegment, ...]


def _cell_to_field(value: object, annotation: str) -> object:
    """A cell value read back as the FormRow field's type; blank -> None (or "" for text)."""
    if isinstance(value, str) and not value.strip():
        value = None
    if "str" in annotation:
        if value is None:
            return None if "None" in annotation else ""
        if isinstance(value, datetime):
            return value.date().isoformat()  # a date Excel recognised when someone edited the cell
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    return int(number) if annotation.startswith("int") and number.is_integer() else number


def read_form_xlsx(path: Path) -> list[FormRow]:
    """Read the rows of a filled 様式A workbook back by header name (row 2), from row 3 on.

    Any template the writer accepts works; columns it lacks come back blank. Rows without a
    路線番号 are skipped (empty lines). ``InputError`` names the file and what is wrong with it.
    """
    import openpyxl

    path = Path(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read the 様式A workbook {path}: {exc}") from exc
    try:
        rows = list(book.worksheets[0].iter_rows(min_row=HEADER_ROW, values_only=True))
    finally:
        book.close()
    headers = rows[0] if rows else ()
    column_of = {}
    for i, header in enumerate(headers):
        field = _FIELD_BY_NORMALISED.get(_normalise_header(header))
        if field and field not in column_of:
            column_of[field] = i
    missing = [_HEADER_BY_FIELD[f] for f in KEY_FIELDS if f not in column_of]
    if missing:
        raise InputError(
            f"{path} has no column {', '.join(missing)} in row {HEADER_ROW}; "
            "it is not a 様式A form written by 'pavement process'"
        )
    annotations = {f.name: str(f.type) for f in fields(FormRow)}
    out = []
    for r, values in enumerate(rows[1:], start=FIRST_DATA_ROW):
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        kwargs = {}
        for name, annotation in annotations.items():
            value = values[column_of[name]] if name in column_of and column_of[name] < len(values) else None
            try:
                kwargs[name] = _cell_to_field(value, annotation)
            except ValueError as exc:
                raise InputError(
                    f"{path} row {r}, column '{_HEADER_BY_FIELD[name]}': {exc}; "
                    "fix the cell or write the form again"
                ) from exc
        if not kwargs["route_no"]:
            continue
        blank = [_HEADER_BY_FIELD[f] for f in KEY_FIELDS if kwargs[f] in (None, "")]
        if blank:
            raise InputError(
                f"{path} row {r}: {', '.join(blank)} is blank; every row needs its 距離標 and 上下"
            )
        out.append(FormRow(**kwargs))
    return out


def form_row_order_key(row: FormRow) -> tuple:
    """路線番号 (natural order), 上下, 距離標, 追加距離, then 現道・旧道・新道 and 車線."""
    return (
        route_sort_key(row.route_no),
        row.direction,
        row.start_kp_km,
        row.start_offset_m,
        row.road_status,
        row.lane_code if row.lane_code is not None else -1,
    )


def _date_key(text: str) -> date:
    """点検年月日 for "newest": ISO or 2026/11/02; unreadable or blank counts as oldest."""
    try:
        return date.fromisoformat(str(text).strip().replace("/", "-"))
    except ValueError:
        return date.min


def merge_form_rows(runs: Sequence[RunRows], keep_duplicates: bool = False) -> FormMerge:
    """The rows of several runs as one form, ordered by ``form_row_order_key``.

    A 様式A form holds one record per 100 m segment and lane for the inspection period, so when
    several runs surveyed the same segment (same 路線番号, 現道・旧道・新道, 上下, 車線, 距離標 and
    追加距離) the row with the newest 点検年月日 is kept: the latest condition is what the office
    reports. On equal dates the run given later wins. ``keep_duplicates`` keeps every row instead
    (oldest first). Either way each such segment is listed in ``duplicates``.
    """
    groups: dict[tuple, list[tuple[int, int, FormRow]]] = {}
    for run_no, run in enumerate(runs):
        for row_no, row in enumerate(run.rows):
            groups.setdefault(form_row_order_key(row), []).append((run_no, row_no, row))
    merged: list[FormRow] = []
    duplicates = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda g: (_date_key(g[2].inspection_date), g[0], g[1]))
        kept = group if keep_duplicates else group[-1:]
        merged.extend(row for _, _, row in kept)
        if len(group) > 1:
            run_nos = sorted({g[0] for g in group})
            row = group[0][2]
            label = (
                f"路線 {row.route_no} {row.direction} {row.start_kp_km:g} km + {row.start_offset_m:g} m"
                + (f" 車線 {row.lane_code}" if row.lane_code is not None else "")
            )
            duplicates.append(
                DuplicateSegment(
                    label=label,
                    sources=tuple(runs[i].source for i in run_nos),
                    kept=tuple(dict.fromkeys(runs[g[0]].source for g in kept)),
                    n_rows=len(group),
                    n_kept=len(kept),
                    same_date=_date_key(group[-1][2].inspection_date)
                    == _date_key(group[-2][2].inspection_date),
                )
            )
    return FormMerge(tuple(merged), tuple(duplicates))
