from datetime import date

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from exporters.form_a import DEFAULT_TEMPLATE, FormContext, segments_to_form_rows, write_form_xlsx
from pavement.diagnosis import Category
from pavement.errors import ExportError
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
