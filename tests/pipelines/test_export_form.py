"""``pavement export-form``: several processed runs -> one 様式A workbook."""

import json
import os
from datetime import date

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from exporters.form_a import DEFAULT_TEMPLATE, FormContext, segments_to_form_rows, write_form_xlsx
from pavement.diagnosis import Category
from pavement.errors import ExportError, InputError
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics
from pipelines.export_form import ExportFormConfig, run_export_form
from tests.conftest import pavement_cli


def _segment(route: str, direction: Direction, kp_km: float, offset_m: float, iri: float) -> Segment:
    return Segment(
        key=SegmentKey(route, direction, kp_km, offset_m),
        start_lat=40.8 + offset_m * 1e-5,
        start_lon=140.7,
        end_lat=40.8 + (offset_m + 100) * 1e-5,
        end_lon=140.7,
        frame_indices=(1, 2, 3),
        metrics=SegmentMetrics(iri_mm_per_m=iri, crack_ratio_pct=10.0, category=Category.I),
    )


def _results_folder(path, day: date, segments: list[Segment]):
    """What 'pavement process' leaves behind, as far as export-form reads it."""
    path.mkdir(parents=True)
    context = FormContext(prefecture="青森県", route_name="国道", inspection_date=day)
    write_form_xlsx(segments_to_form_rows(segments, context), path / "form_a.xlsx")
    return path


@pytest.fixture
def two_runs(tmp_path):
    down, up = Direction.DOWN, Direction.UP
    spring = _results_folder(
        tmp_path / "2026-05-10",
        date(2026, 5, 10),
        [_segment("10", up, 3, 0, 1.1), _segment("3", down, 12, 100, 9.9), _segment("3", down, 12, 0, 1.2)],
    )
    autumn = _results_folder(
        tmp_path / "2026-10-02",
        date(2026, 10, 2),
        [_segment("3", down, 12, 200, 1.3), _segment("3", down, 12, 100, 1.4), _segment("45", up, 0, 0, 1.5)],
    )
    return spring, autumn


def _rows(path):
    sheet = openpyxl.load_workbook(path).worksheets[0]
    headers = [c.value for c in sheet[2]]
    return headers, [
        dict(zip(headers, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=3)
    ]


def test_runs_are_merged_in_route_order_with_the_newest_duplicate(two_runs, tmp_path):
    out = tmp_path / "form_2026.xlsx"
    result = run_export_form(list(two_runs), out)
    headers, rows = _rows(out)
    assert headers == _rows(DEFAULT_TEMPLATE)[0]
    keys = [(r["路線番号"], r["上下"], r["距離標(起点)"], r["距離標からの追加距離(起点)"]) for r in rows]
    assert keys == [
        (3, "下り", 12, 0),
        (3, "下り", 12, 100),
        (3, "下り", 12, 200),
        (10, "上り", 3, 0),
        (45, "上り", 0, 0),
    ]
    assert result.n_rows == 5 and result.n_runs == 2
    assert rows[1]["IRI(mm/m)"] == 1.4 and rows[1]["点検年月日"] == "2026-10-02"  # autumn's row
    assert rows[0]["点検年月日"] == "2026-05-10" and rows[0]["都道府県"] == "青森県"
    assert rows[0]["診断区分"] == "Ⅰ" and rows[0]["ひび割れ率(%)"] == 10.0
    (dup,) = result.duplicates
    assert dup.kept == (str(two_runs[1]),)
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert report["rows"] == 5 and [r["rows"] for r in report["runs"]] == [3, 3]
    assert report["duplicates"][0]["segment"].startswith("路線 3 下り 12 km + 100 m")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "form_2026.xlsx",
        "form_2026_report.json",
    ]


def test_keep_duplicates_and_a_folder_given_twice(two_runs, tmp_path):
    spring, autumn = two_runs
    result = run_export_form(
        [spring, autumn, spring / ".." / spring.name],
        tmp_path / "all.xlsx",
        ExportFormConfig(keep_duplicates=True),
    )
    _, rows = _rows(tmp_path / "all.xlsx")
    assert result.n_rows == len(rows) == 6
    assert [r["IRI(mm/m)"] for r in rows if r["距離標からの追加距離(起点)"] == 100] == [
        9.9,
        1.4,
    ]  # oldest first
    assert any("given twice" in w for w in result.warnings)


def test_an_official_template_with_another_column_order(two_runs, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["リストから選択", "数値", "数値", "テキスト", "数値", "数値", "リストから選択"])
    sheet.append(
        [
            "上下",
            "距離標（起点）",
            "距離標からの追加距離（起点）",
            "調査会社",
            "路線番号",
            "IRI（mm/m）",
            "診断区分",
        ]
    )
    for column, choices in (("A", "上り,下り"), ("G", "Ⅰ,Ⅱ,Ⅲ,Ⅲ-1,Ⅲ-2")):
        dv = DataValidation(type="list", formula1=f'"{choices}"')
        dv.add(f"{column}3:{column}1000")
        sheet.add_data_validation(dv)
    template = tmp_path / "様式A_official.xlsx"
    book.save(template)
    out = tmp_path / "official_out.xlsx"
    result = run_export_form(list(two_runs), out, ExportFormConfig(template=template))
    headers, rows = _rows(out)
    assert headers[3] == "調査会社" and result.unknown_headers == ("調査会社",)
    assert [(r["路線番号"], r["距離標からの追加距離（起点）"]) for r in rows] == [
        (3, 0),
        (3, 100),
        (3, 200),
        (10, 0),
        (45, 0),
    ]
    assert rows[1]["IRI（mm/m）"] == 1.4 and rows[1]["上下"] == "下り" and rows[1]["診断区分"] == "Ⅰ"
    assert all(r["調査会社"] is None for r in rows)
    assert openpyxl.load_workbook(out).worksheets[0].data_validations.dataValidation  # lists kept


def test_a_folder_that_is_not_a_process_output(two_runs, tmp_path):
    empty = tmp_path / "just_a_folder"
    empty.mkdir()
    with pytest.raises(InputError, match=r"just_a_folder is not an output folder.*form_a.xlsx is missing"):
        run_export_form([two_runs[0], empty], tmp_path / "x.xlsx")
    with pytest.raises(InputError, match="does not exist"):
        run_export_form([tmp_path / "nope"], tmp_path / "x.xlsx")
    with pytest.raises(InputError, match="no results folders"):
        run_export_form([], tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.parametrize(
    ("out_name", "match"),
    [("missing/form.xlsx", "folder .*missing does not exist"), ("form.csv", "ending in .xlsx")],
)
def test_bad_output_paths(two_runs, tmp_path, out_name, match):
    with pytest.raises(ExportError, match=match):
        run_export_form(list(two_runs), tmp_path / out_name)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(two_runs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="no permission"):
            run_export_form(list(two_runs), locked / "form.xlsx")
    finally:
        locked.chmod(0o700)


def test_a_failed_export_leaves_the_previous_workbook(two_runs, tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["リストから選択"])
    book.active.append(["上下"])
    dv = DataValidation(type="list", formula1='"上,下"')  # a list our values are not in
    dv.add("A3:A100")
    book.active.add_data_validation(dv)
    template = tmp_path / "strict.xlsx"
    book.save(template)
    out = tmp_path / "form.xlsx"
    out.write_bytes(b"previous")
    with pytest.raises(ExportError, match="上下"):
        run_export_form(list(two_runs), out, ExportFormConfig(template=template))
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["form.xlsx", "strict.xlsx"]


def test_cli(two_runs, tmp_path):
    out = tmp_path / "form.xlsx"
    done = pavement_cli(
        "export-form", *map(str, two_runs), "--out", str(out), "--template", str(DEFAULT_TEMPLATE)
    )
    assert done.returncode == 0, done.stderr
    assert f"5 rows from 2 runs -> {out}" in done.stdout
    assert "warning: 路線 3 下り 12 km + 100 m" in done.stderr and "kept the newest" in done.stderr

    done = pavement_cli("export-form", str(two_runs[0]), str(tmp_path), "--out", str(out))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert (
        done.stderr.startswith("InputError:")
        and str(tmp_path) in done.stderr
        and "form_a.xlsx" in done.stderr
    )

    done = pavement_cli("export-form", str(two_runs[0]), "--out", str(tmp_path / "no" / "f.xlsx"))
    assert done.returncode == 1 and done.stderr.startswith("ExportError:") and "does not exist" in done.stderr
