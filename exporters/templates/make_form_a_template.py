"""Writes the project's default 様式A template, ``form_a_default.xlsx``, beside this script.

Row 1: each column's data type; row 2: the column names; list columns carry data validation.
Columns up to the start point's longitude follow the known 様式A; the later ones are the
project's reading of the form and are not confirmed from an official source.

    python exporters/templates/make_form_a_template.py
"""

from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

TEXT, NUMBER, LIST = "テキスト", "数値", "リストから選択"

COLUMNS: list[tuple[str, str, list[str] | None]] = [
    ("地整", TEXT, None),
    ("事務所番号", NUMBER, None),
    ("事務所", TEXT, None),
    ("出張所番号", NUMBER, None),
    ("出張所", TEXT, None),
    ("都道府県", TEXT, None),
    ("都道府県・政令市", TEXT, None),
    ("路線番号", NUMBER, None),
    ("現道・旧道・新道 区分", LIST, ["現道", "旧道", "新道"]),
    ("路線名", TEXT, None),
    ("分類 (AorB)", LIST, ["A", "B"]),
    ("市町村(起点)", TEXT, None),
    ("距離標(起点)", NUMBER, None),
    ("距離標からの追加距離(起点)", NUMBER, None),
    ("緯度(起点)", NUMBER, None),
    ("経度(起点)", NUMBER, None),
    ("市町村(終点)", TEXT, None),
    ("距離標(終点)", NUMBER, None),
    ("距離標からの追加距離(終点)", NUMBER, None),
    ("緯度(終点)", NUMBER, None),
    ("経度(終点)", NUMBER, None),
    ("上下", LIST, ["上り", "下り"]),
    ("車線", NUMBER, None),
    ("舗装種別", LIST, ["アスファルト", "コンクリート"]),
    ("点検年月日", TEXT, None),
    ("点検方法", TEXT, None),
    ("ひび割れ率(%)", NUMBER, None),
    ("わだち掘れ量(mm)", NUMBER, None),
    ("IRI(mm/m)", NUMBER, None),
    ("診断区分", LIST, ["Ⅰ", "Ⅱ", "Ⅲ", "Ⅲ-1", "Ⅲ-2"]),
    ("措置", TEXT, None),
    ("写真番号", TEXT, None),
    ("備考", TEXT, None),
]


def main() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "様式A"
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for col, (name, kind, choices) in enumerate(COLUMNS, start=1):
        letter = get_column_letter(col)
        sheet.cell(row=1, column=col, value=kind).font = Font(size=9, color="666666")
        cell = sheet.cell(row=2, column=col, value=name)
        cell.font = Font(bold=True)
        cell.fill = header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[letter].width = max(8, min(18, len(name) * 2 + 2))
        if choices:
            dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
            dv.add(f"{letter}3:{letter}5000")
            sheet.add_data_validation(dv)
    sheet.freeze_panes = "A3"
    out = Path(__file__).with_name("form_a_default.xlsx")
    book.save(out)
    print(out)


if __name__ == "__main__":
    main()
