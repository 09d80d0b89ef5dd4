"""File-drop shapes: daily government exports (GBK CSV / XLSX), grid workers' monthly
workbooks, hourly alarm JSON lines.

A file that is cut short (no final line end, an unreadable ZIP) or in an encoding that does
not yield the expected header fails the run loudly, naming the file: the rows after the cut
are gone and landing the rest would under-count silently. A single unreadable row is a
quarantine matter instead. Duplicate drops (`name(1).csv`) are read too; the natural-key
dedup removes the repeated rows. Days whose files have not arrived are reported as not
delivered, never landed as empty.

Vendor files hold clear personal data, so they are not kept forever: once a run has landed
them they move to `<drop dir>/_landed/` (`after_landing`), where re-runs and late listings
still find them, and are deleted `drops.retention_days` (config/pipeline.yml, default 7)
after they were last landed from. A re-delivered file of the same name wins over the kept one.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import os
import time
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ingestion.connectors import Unit
from ingestion.http import FetchError, RetryCounter
from ingestion.mapping import PARSE_ERROR, KindMapping, ShapeMapping
from ingestion.mapping import PARSE_RAW as RAW
from ingestion.paths import make_private_dir, private_file
from ingestion.registry import CONFIG_DIR, PROJECT_ROOT, FileDrop, Site, read_yaml
from ingestion.timeutil import days_between

LANDED_DIR = "_landed"
PIPELINE_FILE = CONFIG_DIR / "pipeline.yml"
DEFAULT_RETENTION_DAYS = 7


@cache
def drop_retention_days() -> float:
    """Days a landed vendor file is kept after it was last landed from (config/pipeline.yml)."""
    drops = read_yaml(PIPELINE_FILE).get("drops") or {}
    days = float(drops.get("retention_days", DEFAULT_RETENTION_DAYS))
    if days < 0:
        raise ValueError(f"{PIPELINE_FILE}: drops.retention_days must be >= 0, not {days}")
    return days


def purge_expired(folder: Path, retention_days: float, now: float | None = None) -> list[Path]:
    """Delete the files in `folder` last landed more than `retention_days` ago."""
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    expired = [p for p in folder.iterdir() if p.is_file() and p.stat().st_mtime < cutoff]
    for path in expired:
        path.unlink(missing_ok=True)
    return expired


def resolve_drop_dir(site: Site, source: FileDrop) -> Path:
    path = Path(site.resolve(source.drop_dir))
    return path if path.is_absolute() else PROJECT_ROOT / path


def _header_names(mapping: KindMapping) -> set[str]:
    return {s for rule in mapping.rules for s in rule.sources if not s.startswith("_")}


class _FileConnector:
    def __init__(self, site: Site, kind: str, source: FileDrop, mapping: ShapeMapping, retry: RetryCounter):
        self.site = site
        self.kind = kind
        self.source = source
        self.settings = mapping.settings
        self.kind_mapping = mapping.kind(kind)
        self.retry = retry
        self.drop_dir = resolve_drop_dir(site, source)
        self.missing: list[dt.date] = []
        self.missing_detail: list[str] = []
        self.read_files: list[Path] = []

    def fail(self, path: Path, cause: str) -> FetchError:
        return FetchError(self.site.site_id, self.kind, f"{path.name}: {cause}")

    def close(self) -> None:
        pass

    def _glob(self, pattern: str) -> list[Path]:
        """The files of `pattern`, freshly dropped or kept from an earlier landing (the fresh one wins)."""
        if not self.drop_dir.is_dir():
            return []
        kept = self.drop_dir / LANDED_DIR
        found = {p.name: p for p in kept.glob(pattern)} if kept.is_dir() else {}
        found.update({p.name: p for p in self.drop_dir.glob(pattern)})
        return [found[name] for name in sorted(found)]

    def _note_read(self, path: Path) -> Path:
        self.read_files.append(path)
        return path

    def after_landing(self) -> None:
        """Move the files this run landed to _landed/ (their retention starts now) and delete
        the kept files whose retention has passed; with retention 0, delete them at once."""
        retention = drop_retention_days()
        kept = self.drop_dir / LANDED_DIR
        for path in dict.fromkeys(self.read_files):
            if not path.exists():
                continue
            if retention == 0:
                path.unlink()
                continue
            target = kept / path.name
            if path != target:
                os.replace(path, make_private_dir(kept) / path.name)
            os.utime(private_file(target))
        purge_expired(kept, retention)


class GovExportConnector(_FileConnector):
    """One file a day: gov_cases_YYYYMMDD.csv (GBK) or .xlsx (sheet 办件明细)."""

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]:
        units = []
        fmt = self.source.file_format
        for day in days_between(first_day, last_day):
            pattern = str(self.settings["file_pattern"]).format(yyyymmdd=f"{day:%Y%m%d}", format=fmt)
            files = tuple(self._glob(pattern))
            if files:
                units.append(Unit(day=day, label=", ".join(f.name for f in files), files=files))
            else:
                self.missing.append(day)
                self.missing_detail.append(pattern)
        return units

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        for path in map(self._note_read, unit.files):
            yield self._read_xlsx(path) if path.suffix.lower() == ".xlsx" else self._read_csv(path)

    def _read_csv(self, path: Path) -> list[dict[str, Any]]:
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            raise self.fail(path, "file is truncated (the last line has no line end)")
        expected = _header_names(self.kind_mapping)
        text = None
        tried = []
        for encoding in self.settings.get("encodings", ["gbk"]):
            try:
                candidate = data.decode(encoding)
            except UnicodeDecodeError:
                tried.append(f"{encoding}: undecodable")
                continue
            header = next(csv.reader(io.StringIO(candidate)), [])
            if len(expected & {h.strip() for h in header}) >= min(3, len(expected)):
                text = candidate
                break
            tried.append(f"{encoding}: header not recognised")
        if text is None:
            raise self.fail(path, f"cannot read the file ({'; '.join(tried)})")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip() for h in next(reader)]
        rows: list[dict[str, Any]] = []
        for line_no, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                reason = f"row: {path.name} line {line_no} has {len(cells)} fields, header has {len(header)}"
                rows.append({PARSE_ERROR: reason, RAW: ragged_record(header, cells)})
                continue
            rows.append(dict(zip(header, cells, strict=True)))
        return rows

    def _read_xlsx(self, path: Path) -> list[dict[str, Any]]:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise self.fail(path, f"unreadable workbook, truncated? ({exc})") from None
        try:
            sheet_name = self.settings.get("sheet")
            sheet = workbook[sheet_name] if sheet_name in workbook.sheetnames else workbook.worksheets[0]
            values = list(sheet.iter_rows(values_only=True))
        finally:
            workbook.close()
        if not values:
            return []
        header = [str(h).strip() if h is not None else "" for h in values[0]]
        return [
            dict(zip(header, row, strict=False))
            for row in values[1:]
            if any(v is not None and str(v).strip() for v in row)
        ]


class AlarmJsonlConnector(_FileConnector):
    """One JSON-lines file per local hour: <kind>_YYYYMMDDHH.jsonl."""

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]:
        units = []
        for day in days_between(first_day, last_day):
            files: list[Path] = []
            absent = []
            for hour in range(24):
                stamp = f"{day:%Y%m%d}{hour:02d}"
                found = self._glob(str(self.settings["file_pattern"]).format(kind=self.kind, yyyymmddhh=stamp))
                if not found:
                    absent.append(f"{hour:02d}")
                files.extend(found)
            if absent:
                self.missing.append(day)
                self.missing_detail.append(f"{day}: hours {','.join(absent)}")
            else:
                units.append(Unit(day=day, label=f"{self.kind} {day} ({len(files)} files)", files=tuple(files)))
        return units

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        for path in map(self._note_read, unit.files):
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                raise self.fail(path, "file is truncated (the last line has no line end)")
            rows: list[dict[str, Any]] = []
            for line_no, line in enumerate(data.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    rows.append(
                        {
                            PARSE_ERROR: f"row: {path.name} line {line_no} is not JSON ({exc})",
                            RAW: line.decode("utf-8", "replace"),
                        }
                    )
                    continue
                if not isinstance(value, dict):
                    rows.append({PARSE_ERROR: f"row: {path.name} line {line_no} is not an object", RAW: value})
                    continue
                rows.append(value)
            if rows:
                yield rows


class ManualXlsxConnector(_FileConnector):
    """Monthly workbooks <kind>_YYYY-MM.xlsx with title rows, drifting headers, merged cells."""

    def units(self, first_day: dt.date, last_day: dt.date) -> list[Unit]:
        units = []
        month = first_day.replace(day=1)
        while month <= last_day:
            month_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            pattern = str(self.settings["file_pattern"]).format(kind=self.kind, yyyy_mm=f"{month:%Y-%m}")
            files = tuple(self._glob(pattern))
            covered = [d for d in days_between(max(month, first_day), min(month_end, last_day))]
            if files:
                label = ", ".join(f.name for f in files)
                units.append(Unit(day=covered[0], label=label, files=files, covers=(month, month_end)))
            else:
                self.missing.extend(covered)
                self.missing_detail.append(pattern)
            month = month_end + dt.timedelta(days=1)
        return units

    def pages(self, unit: Unit) -> Iterator[list[dict[str, Any]]]:
        for path in map(self._note_read, unit.files):
            yield self._read_workbook(path)

    def _read_workbook(self, path: Path) -> list[dict[str, Any]]:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise self.fail(path, f"unreadable workbook, truncated? ({exc})") from None
        sheet = workbook.worksheets[0]
        merged: dict[tuple[int, int], Any] = {}
        for rng in sheet.merged_cells.ranges:
            top_left = sheet.cell(rng.min_row, rng.min_col).value
            for row in range(rng.min_row, rng.max_row + 1):
                for col in range(rng.min_col, rng.max_col + 1):
                    merged[(row, col)] = top_left
        grid = [
            [merged.get((r, c), cell.value) for c, cell in enumerate(cells, start=1)]
            for r, cells in enumerate(sheet.iter_rows(), start=1)
        ]
        workbook.close()
        known = _header_names(self.kind_mapping) | {"序号"}
        need = int(self.settings.get("min_header_matches", 3))
        header_index = next(
            (
                i
                for i, row in enumerate(grid[: int(self.settings.get("header_search_rows", 10))])
                if sum(1 for v in row if v is not None and str(v).strip() in known) >= need
            ),
            None,
        )
        if header_index is None:
            raise self.fail(path, f"no header row with {need} known column names in the first rows")
        header = [str(v).strip() if v is not None else "" for v in grid[header_index]]
        fill_down = set(self.settings.get("fill_down", []))
        snapshot = _month_of(path)
        rows: list[dict[str, Any]] = []
        last: dict[str, Any] = {}
        for values in grid[header_index + 1 :]:
            if not any(v is not None and str(v).strip() for v in values):
                break  # data ends at the first fully blank row; a footer may follow
            row = {h: v for h, v in zip(header, values, strict=False) if h}
            for name in fill_down & row.keys():
                if row[name] is None or not str(row[name]).strip():
                    row[name] = last.get(name)
                last[name] = row[name]
            row["_snapshot_date"] = snapshot
            rows.append(row)
        return rows


def ragged_record(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A CSV row whose field count is off, as a record: cells under the header names they fall
    under (so personal columns are pseudonymized by name in quarantine) and the rest under
    `_extra_cells`. The pairing may be shifted; every value is redacted as text as well."""
    record: dict[str, Any] = dict(zip(header, cells, strict=False))
    if len(cells) > len(header):
        record["_extra_cells"] = cells[len(header) :]
    return record


def _month_of(path: Path) -> dt.date | None:
    stem = path.stem.split("(")[0]
    try:
        return dt.datetime.strptime(stem[-7:], "%Y-%m").date()
    except ValueError:
        return None


def make_file_connector(site: Site, kind: str, source: FileDrop, mapping: ShapeMapping, retry: RetryCounter):
    classes = {"gov_export": GovExportConnector, "manual_xlsx": ManualXlsxConnector, "alarm_jsonl": AlarmJsonlConnector}
    return classes[source.shape](site, kind, source, mapping, retry)
