from dataclasses import replace
from datetime import date, datetime

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from exporters.form_a import (
    DEFAULT_TEMPLATE,
    FormContext,
    RunRows,
    merge_form_rows,
    read_form_xlsx,
    route_sort_key,
    segments_to_form_rows,
    write_form_xlsx,
)
from pavement.diagnosis import Category
from pavement.errors import ExportError, InputError
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics

CONTEXT = FormContext(
    prefecture="青森県",
    prefecture_or_city="青森県",
    route_name="国道3号",
    municipality="青森市",
    inspection_date=date(2026, 11, 2),
)


def _segment(offset_m: float, crack: float | None, category: Category | None, partial=False) -> Segment:
    return Segment(
        key=SegmentKey("3", Direction.DOWN, 12, offset_m),
        start_lat=40.8 + offset_m * 1e-5,
        start_lon=140.7,
        end_lat=40.8 + (offset_m + 100) * 1e-5,
        end_lon=140.7,
        partial=partial,
        frame_indices=(10, 20, 30, 40),
        metrics=SegmentMetrics(
            crack_ratio_pct=crack, rut_depth_mm=12.34, iri_mm_per_m=2.567, category=category
        ),
    )


def _read_rows(path):
    sheet = openpyxl.load_workbook(path).worksheets[0]
    headers = [c.value for c in sheet[2]]
    return [dict(zip(headers, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=3)]


def test_no_segments_gives_the_bare_template(tmp_path):
    out = tmp_path / "form_a.xlsx"
    write_form_xlsx(segments_to_form_rows([], CONTEXT), out)
    assert _read_rows(out) == []


def test_round_trip_values_and_order(tmp_path):
    segs = [_segment(200, 45.0, Category.III), _segment(100, 12.5, Category.I, partial=True)]
    out = tmp_path / "form_a.xlsx"
    unknown = write_form_xlsx(segments_to_form_rows(segs, CONTEXT), out)
    assert unknown == []
    rows = _read_rows(out)
    assert [r["距離標からの追加距離(起点)"] for r in rows] == [100, 200]  # sorted by 距離標
    first = rows[0]
    assert first["路線番号"] == 3 and first["上下"] == "下り" and first["距離標(起点)"] == 12
    assert first["距離標からの追加距離(終点)"] == 200
    assert first["ひび割れ率(%)"] == 12.5 and first["わだち掘れ量(mm)"] == 12.3 and first["IRI(mm/m)"] == 2.57
    assert first["診断区分"] == "Ⅰ" and rows[1]["診断区分"] == "Ⅲ"
    assert first["緯度(起点)"] == pytest.approx(40.801)
    assert first["点検年月日"] == "2026-11-02"
    assert "一部" in first["備考"]
    assert openpyxl.load_workbook(out).worksheets[0]["A1"].value == "テキスト"  # type row kept


def test_unknown_metrics_stay_blank(tmp_path):
    out = tmp_path / "f.xlsx"
    write_form_xlsx(segments_to_form_rows([_segment(0, None, None)], CONTEXT), out)
    row = _read_rows(out)[0]
    assert row["ひび割れ率(%)"] is None and row["診断区分"] is None


def test_an_official_style_template_is_mapped_by_header(tmp_path):
    # Full-width brackets, an extra column and another order: mapped by name, extra left blank.
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["数値", "テキスト", "数値", "リストから選択", "テキスト"])
    sheet.append(["距離標（起点）", "新しい列", "ひび割れ率（%）", "診断区分", "上下"])
    dv = DataValidation(type="list", formula1='"Ⅰ,Ⅱ,Ⅲ"')
    dv.add("D3:D100")
    sheet.add_data_validation(dv)
    template = tmp_path / "official.xlsx"
    book.save(template)
    out = tmp_path / "out.xlsx"
    unknown = write_form_xlsx(segments_to_form_rows([_segment(0, 30.0, Category.II)], CONTEXT), out, template)
    assert unknown == ["新しい列"]
    row = _read_rows(out)[0]
    assert row["距離標（起点）"] == 12 and row["ひび割れ率（%）"] == 30.0 and row["診断区分"] == "Ⅱ"
    assert row["新しい列"] is None


def test_value_outside_a_list_is_an_error(tmp_path):
    context = FormContext(road_class="C")  # the default template allows only A or B
    with pytest.raises(ExportError, match="分類"):
        write_form_xlsx(segments_to_form_rows([_segment(0, 1.0, Category.I)], context), tmp_path / "x.xlsx")


def test_bad_template_and_path(tmp_path):
    rows = segments_to_form_rows([_segment(0, 1.0, Category.I)], CONTEXT)
    not_xlsx = tmp_path / "t.xlsx"
    not_xlsx.write_text("not a workbook")
    with pytest.raises(ExportError, match="template"):
        write_form_xlsx(rows, tmp_path / "o.xlsx", not_xlsx)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="cannot write"):
        write_form_xlsx(rows, blocker / "o.xlsx", DEFAULT_TEMPLATE)


# --- batch export: reading forms back and merging them ---------------------------------------


def _row(route: str, direction: str, offset_m: float, date_text: str = "2026-11-02", iri: float = 1.0):
    seg = Segment(
        key=SegmentKey(route, Direction(direction), 12, offset_m),
        start_lat=40.8,
        start_lon=140.7,
        end_lat=40.801,
        end_lon=140.7,
        metrics=SegmentMetrics(iri_mm_per_m=iri),
    )
    (row,) = segments_to_form_rows([seg], replace(CONTEXT, inspection_date=date.fromisoformat(date_text)))
    return row


@pytest.mark.parametrize(
    ("routes", "ordered"),
    [
        ([], []),
        (["10", "3", "101", "45"], ["3", "10", "45", "101"]),
        (["7-2", "7", "7-10", "track"], ["7", "7-2", "7-10", "track"]),
    ],
)
def test_route_numbers_sort_naturally(routes, ordered):
    assert sorted(routes, key=route_sort_key) == ordered


def test_segments_are_ordered_by_route_number_not_text():
    segs = [
        replace(_segment(0, 1.0, Category.I), key=SegmentKey(r, Direction.DOWN, 0, 0))
        for r in "10 3 2".split()
    ]
    assert [r.route_no for r in segments_to_form_rows(segs, CONTEXT)] == ["2", "3", "10"]


def test_read_form_round_trip(tmp_path):
    segs = [_segment(200, 45.0, Category.III), _segment(100, None, None, partial=True)]
    rows = segments_to_form_rows(segs, CONTEXT)
    out = tmp_path / "form_a.xlsx"
    write_form_xlsx(rows, out)
    assert read_form_xlsx(out) == rows


def test_read_form_of_another_template_and_edited_cells(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["テキスト", "数値", "数値", "リストから選択", "テキスト", "テキスト"])
    sheet.append(["上下", "距離標（起点）", "距離標からの追加距離（起点）", "路線番号", "点検年月日", "措置"])
    sheet.append(["上り", 5, 300, 45, datetime(2026, 10, 1), "切削オーバーレイ"])  # a date Excel made
    sheet.append([None] * 6)  # empty lines are skipped
    path = tmp_path / "edited.xlsx"
    book.save(path)
    (row,) = read_form_xlsx(path)
    assert (row.route_no, row.direction, row.start_kp_km, row.start_offset_m) == ("45", "上り", 5, 300)
    assert row.inspection_date == "2026-10-01" and row.action == "切削オーバーレイ"
    assert row.iri_mm_per_m is None and row.office == ""  # columns the form lacks come back blank


@pytest.mark.parametrize(
    ("headers", "values", "match"),
    [
        (["路線番号", "距離標(起点)", "距離標からの追加距離(起点)"], [3, 12, 0], "no column 上下"),
        (
            ["路線番号", "上下", "距離標(起点)", "距離標からの追加距離(起点)"],
            [3, "下り", None, 0],
            "row 3.*blank",
        ),
        (
            ["路線番号", "上下", "距離標(起点)", "距離標からの追加距離(起点)"],
            [3, "下り", "十二", 0],
            "not a number",
        ),
    ],
)
def test_read_form_errors_name_the_file_and_the_problem(tmp_path, headers, values, match):
    book = openpyxl.Workbook()
    book.active.append(["テキスト"] * len(headers))
    book.active.append(headers)
    book.active.append(values)
    path = tmp_path / "bad.xlsx"
    book.save(path)
    with pytest.raises(InputError, match=match) as info:
        read_form_xlsx(path)
    assert "bad.xlsx" in str(info.value)


def test_read_form_of_a_non_workbook(tmp_path):
    path = tmp_path / "form_a.xlsx"
    path.write_text("not a workbook")
    with pytest.raises(InputError, match="cannot read"):
        read_form_xlsx(path)


def test_merge_orders_runs_and_keeps_the_newest_duplicate():
    old = RunRows("runs/a", (_row("10", "上り", 0), _row("3", "下り", 100, "2026-06-01", iri=5.0)))
    new = RunRows("runs/b", (_row("3", "下り", 100, "2026-09-01", iri=2.0), _row("3", "上り", 0)))
    merged = merge_form_rows([new, old])  # the date decides, not the order given
    assert [(r.route_no, r.direction, r.start_offset_m) for r in merged.rows] == [
        ("3", "上り", 0),
        ("3", "下り", 100),
        ("10", "上り", 0),
    ]
    assert merged.rows[1].iri_mm_per_m == 2.0
    (dup,) = merged.duplicates
    assert dup.sources == ("runs/b", "runs/a") and dup.kept == ("runs/b",)
    assert "路線 3 下り 12 km + 100 m" in dup.message and dup.message.endswith("kept the newest: runs/b")


def test_merge_ties_and_keep_duplicates():
    a = RunRows("a", (_row("3", "下り", 0, iri=1.0),))
    b = RunRows("b", (_row("3", "下り", 0, iri=2.0),))
    tie = merge_form_rows([a, b])
    assert tie.rows[0].iri_mm_per_m == 2.0  # same date: the run given later
    assert tie.duplicates[0].message.endswith("kept the run given later (same 点検年月日): b")
    kept = merge_form_rows([a, b], keep_duplicates=True)
    assert [r.iri_mm_per_m for r in kept.rows] == [1.0, 2.0]
    assert kept.duplicates[0].message.endswith("all kept")
    assert merge_form_rows([]).rows == ()


def test_save_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "f.xlsx"
    out.write_text("old")
    write_form_xlsx([], out)
    assert openpyxl.load_workbook(out).worksheets[0]["A1"].value == "テキスト"
    assert [p.name for p in tmp_path.iterdir()] == ["f.xlsx"]
    fresh, plain = tmp_path / "new.xlsx", tmp_path / "plain.txt"
    write_form_xlsx([], fresh)
    plain.write_text("")
    assert fresh.stat().st_mode == plain.stat().st_mode  # readable like any file the user writes
