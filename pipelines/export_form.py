"""Batch export of 様式A: the forms of several processed runs as one workbook.

``run_export_form(results_dirs, out_path, config)`` reads each run's ``form_a.xlsx`` (written by
``pavement process``) back by header name, merges the rows (ordered by 路線番号, 上下, 距離標; a
segment several runs surveyed keeps the newest row unless ``keep_duplicates``), and fills one
copy of the template: the project's default or an official workbook, mapped by header name.
The workbook is written to a temporary name beside ``out_path`` and renamed, and a small report
(``<out stem>_report.json``: sources, counts, duplicates, warnings) is written next to it.

Reading the runs' forms rather than their segments keeps what an engineer typed into a run's
form (措置, 備考, 市町村) and needs nothing more from ``process``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exporters.form_a import (
    DEFAULT_TEMPLATE,
    DuplicateSegment,
    RunRows,
    merge_form_rows,
    read_form_xlsx,
    write_form_xlsx,
)
from pavement.errors import ExportError, InputError

logger = logging.getLogger(__name__)

#: The file of a ``pavement process`` output folder this stage reads.
RUN_FORM_NAME = "form_a.xlsx"


@dataclass(frozen=True)
class ExportFormConfig:
    template: Path = DEFAULT_TEMPLATE  # row 1 data types, row 2 column names, list validations
    keep_duplicates: bool = False  # keep every run's row of a segment instead of the newest


@dataclass(frozen=True)
class ExportFormResult:
    out_path: Path
    report_json: Path
    n_runs: int
    n_rows: int
    duplicates: tuple[DuplicateSegment, ...]
    unknown_headers: tuple[str, ...]  # template columns left blank (no field for them)
    warnings: tuple[str, ...]


def _check_out_path(out_path: Path) -> None:
    """Fail before reading anything when the result could not be written."""
    if out_path.suffix.lower() != ".xlsx":
        raise ExportError(f"--out {out_path}: the form is an Excel workbook, give a name ending in .xlsx")
    folder = out_path.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {out_path}: the folder {folder} does not exist; create it first")
    if out_path.is_dir():
        raise ExportError(f"cannot write {out_path}: it is a folder; give a file name ending in .xlsx")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out_path}: no permission to write in {folder}")


def _run_form(results_dir: Path) -> Path:
    if not results_dir.exists():
        raise InputError(f"results folder {results_dir} does not exist")
    if not results_dir.is_dir():
        raise InputError(f"{results_dir} is not a folder; give the output folder of 'pavement process'")
    form = results_dir / RUN_FORM_NAME
    if not form.is_file():
        raise InputError(
            f"{results_dir} is not an output folder of 'pavement process': {RUN_FORM_NAME} is missing"
        )
    return form


def run_export_form(
    results_dirs: Sequence[Path], out_path: Path, config: ExportFormConfig = ExportFormConfig()
) -> ExportFormResult:
    """Merge the 様式A rows of ``results_dirs`` (output folders of ``pavement process``) into
    ``out_path`` (.xlsx, in an existing folder). ``InputError`` names a folder that is not a
    process output and the missing file; ``ExportError`` an unusable template or output path."""
    started = time.perf_counter()
    out_path = Path(out_path)
    if not results_dirs:
        raise InputError("no results folders given; pass the output folders of 'pavement process'")
    _check_out_path(out_path)
    template = Path(config.template)
    if not template.is_file():
        raise ExportError(f"様式A template {template} does not exist; give --template an .xlsx workbook")

    warnings: list[str] = []
    runs: list[RunRows] = []
    seen: dict[Path, str] = {}
    for results_dir in map(Path, results_dirs):
        form = _run_form(results_dir)
        resolved = results_dir.resolve()
        if resolved in seen:
            warnings.append(f"{results_dir} is given twice (as {seen[resolved]}); read once")
            continue
        seen[resolved] = str(results_dir)
        rows = read_form_xlsx(form)
        if not rows:
            warnings.append(f"{form} has no rows (the run matched no segment)")
        runs.append(RunRows(str(results_dir), tuple(rows)))

    merged = merge_form_rows(runs, keep_duplicates=config.keep_duplicates)
    warnings.extend(d.message for d in merged.duplicates)
    unknown = write_form_xlsx(list(merged.rows), out_path, template)
    if unknown:
        warnings.append(f"template columns left blank (no field for them): {', '.join(unknown)}")
    for w in warnings:  # the caller shows them (the CLI prints them); the report keeps them all
        logger.info("%s", w)

    report_json = out_path.with_name(f"{out_path.stem}_report.json")
    report = {
        "out": str(out_path),
        "template": str(template),
        "wall_s": round(time.perf_counter() - started, 2),
        "runs": [{"folder": r.source, "rows": len(r.rows)} for r in runs],
        "rows": len(merged.rows),
        "keep_duplicates": config.keep_duplicates,
        "duplicates": [
            {"segment": d.label, "runs": list(d.sources), "kept": list(d.kept), "rows": d.n_rows}
            for d in merged.duplicates
        ],
        "unknown_headers": unknown,
        "warnings": warnings,
    }
    try:
        report_json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {report_json}: {exc}") from exc
    return ExportFormResult(
        out_path=out_path,
        report_json=report_json,
        n_runs=len(runs),
        n_rows=len(merged.rows),
        duplicates=merged.duplicates,
        unknown_headers=tuple(unknown),
        warnings=tuple(warnings),
    )
