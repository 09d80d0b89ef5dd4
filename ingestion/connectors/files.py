"""File-drop shapes: daily government exports (GBK CSV / XLSX), grid workers' monthly
workbooks, hourly alarm JSON lines.

A file that is cut short (no final line end, an unreadable ZIP), in an encoding that does
not yield the expected header (UTF-16/32 is named as such), without a header row, or without
a mapped column fails the run loudly, naming the file (and sheet, field, header): the rows
are there but would land wrong or short. A UTF-8 BOM is a UTF-8 signature: it is stripped
and UTF-8 tried first, whatever the declared encodings. A single unreadable row is a
quarantine matter instead, a CSV cell over `max_field_chars` or a row over
`max_record_chars` too (vendor settings; the reason names file, line and column), so the
rest of the file still lands. Optional fields absent from a file and extra columns no rule
reads are noted (`notes`, one line per file and finding, for the load audit). Duplicate drops (`name(1).csv`) are read too; the natural-key
dedup removes the repeated rows. Days whose files have not arrived are reported as not
delivered, never landed as empty.

Vendor files hold clear personal data, so they are not kept forever: once a run has landed
them they move to `<drop dir>/_landed/` (`after_landing`), where re-runs and late listings
still find them, and are deleted `drops.retention_days` (config/pipeline.yml, default 7)
after they were last landed from. A re-delivered file of the same name wins over the kept one.
"""

from __future__ import annotations

import bisect
import calendar
import codecs
import csv
import datetime as dt
import fnmatch
import io
import os
import re
import time
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ingestion.connectors import Unit
from ingestion.http import FetchError, RetryCounter
from ingestion.mapping import _MISSING, PARSE_ERROR, KindMapping, ShapeMapping
from ingestion.mapping import PARSE_RAW as RAW
from ingestion.paths import make_private_dir, private_file
from ingestion.pii import redact
from ingestion.registry import CONFIG_DIR, PROJECT_ROOT, FileDrop, Site, read_yaml
from ingestion.timeutil import days_between

LANDED_DIR = "_landed"
_WILDCARD = re.compile(r"[*?\[]")  # where a glob pattern stops being literal
PIPELINE_FILE = CONFIG_DIR / "pipeline.yml"
DEFAULT_RETENTION_DAYS = 7
# Fallbacks for the vendor settings `max_field_chars` / `max_record_chars` (characters after
# decoding; bytes for a JSON line): 131072 is Python csv's own default field limit.
DEFAULT_MAX_FIELD_CHARS = 131_072
DEFAULT_MAX_RECORD_CHARS = 1_048_576
UTF8_BOM = codecs.BOM_UTF8
# UTF-32 first: its little-endian BOM starts with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


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


def wide_encoding(data: bytes) -> str | None:
    """UTF-16 or UTF-32 when the bytes look like one (a BOM, or NUL bytes in the first 4 KiB:
    no text in GBK or UTF-8 holds a NUL), else None. Such a file would otherwise be reported
    as truncated (its last bytes are "\n\x00") or as an unknown header."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return name
    head = data[:4096]
    if b"\x00" not in head:
        return None
    return "UTF-32 (NUL bytes)" if b"\x00\x00\x00" in head else "UTF-16 (NUL bytes)"


def _allow_csv_fields_up_to(size: int) -> None:
    """Widen csv's process-wide field limit (never narrow it) to the text already in memory: the
    connector checks cell sizes itself, where it can name file, line and column."""
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)


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
        # One line per file and finding (optional field absent, extra columns) for the load
        # audit; pull() reads it. Header names only, redacted like cell values.
        self.notes: list[str] = []
        self._listing: tuple[list[str], dict[str, Path]] | None = None

    def fail(self, path: Path, cause: str) -> FetchError:
        return FetchError(self.site.site_id, self.kind, f"{path.name}: {cause}")

    def _encodings(self, default: str) -> list[str]:
        return [str(e) for e in self.settings.get("encodings", [default])]

    def _read_bytes(self, path: Path, default_encoding: str) -> bytes:
        """The file's bytes; FetchError naming the file for a wide encoding or a cut file (the
        encoding first: a UTF-16 file ends in "\n\x00" and would look cut)."""
        data = path.read_bytes()
        wide = wide_encoding(data)
        if wide is not None:
            declared = ", ".join(self._encodings(default_encoding))
            raise self.fail(path, f"encoding: looks like {wide}, declared encodings are {declared}")
        if data and not data.endswith(b"\n"):
            raise self.fail(path, "file is truncated (the last line has no line end)")
        return data

    def _check_header(
        self, path: Path, header: list[str], sheet: str | None = None, ignore: frozenset[str] = frozenset()
    ) -> None:
        """Every mapped field has a column (else FetchError naming field and headers looked for;
        an optional field is noted instead) and the columns no rule reads are noted once."""
        where = f"{path.name}, sheet {sheet}" if sheet else path.name
        present = set(header)
        missing = []
        for rule in self.kind_mapping.rules:
            names = [s for s in rule.sources if not s.startswith("_")]
            if rule.const is not _MISSING or not names or not present.isdisjoint(names):
                continue
            looked = ", ".join(names)
            if rule.optional:
                self.notes.append(f"{where}: optional field {rule.target} ({looked}) absent")
            else:
                missing.append(f"field {rule.target} (looked for {looked})")
        if missing:
            raise FetchError(self.site.site_id, self.kind, f"{where}: mapped header missing: {'; '.join(missing)}")
        known = _header_names(self.kind_mapping) | ignore
        extra = [redact(h, record=True) for h in dict.fromkeys(header) if h and h not in known]
        if extra:
            self.notes.append(f"{where}: extra columns {', '.join(extra)} ignored")

    def close(self) -> None:
        pass

    def _glob(self, pattern: str) -> list[Path]:
        """The files of `pattern`, freshly dropped or kept from an earlier landing (the fresh one wins).

        The folders are listed once per connector and a pattern is matched only against the
        names that start with its literal prefix: an hourly feed asks for 24 patterns a day
        of a folder holding thousands of files (a glob per pattern scanned them all)."""
        names, paths = self._drop_listing()
        prefix = _WILDCARD.split(pattern, maxsplit=1)[0]
        found = []
        for name in names[bisect.bisect_left(names, prefix) :]:
            if not name.startswith(prefix):
                break
            if fnmatch.fnmatchcase(name, pattern):
                found.append(paths[name])
        return found

    def _drop_listing(self) -> tuple[list[str], dict[str, Path]]:
        """The drop folder's files and the kept ones of _landed/ (a fresh name wins), sorted by name."""
        if self._listing is None:
            paths: dict[str, Path] = {}
            for folder in (self.drop_dir / LANDED_DIR, self.drop_dir):  # fresh last: it wins
                if folder.is_dir():
                    with os.scandir(folder) as entries:
                        paths.update({e.name: Path(e.path) for e in entries if e.is_file()})
            self._listing = (sorted(paths), paths)
        return self._listing

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
        data = self._read_bytes(path, "gbk")
        encodings = self._encodings("gbk")
        if data.startswith(UTF8_BOM):  # a UTF-8 signature, whatever the declaration says
            data = data[len(UTF8_BOM) :]
            encodings = ["utf-8", *(e for e in encodings if codecs.lookup(e).name != "utf-8")]
        _allow_csv_fields_up_to(len(data) + 1)
        expected = _header_names(self.kind_mapping)
        text = None
        tried = []
        for encoding in encodings:
            try:
                candidate = data.decode(encoding)
            except UnicodeDecodeError:
                tried.append(f"{encoding}: undecodable")
                continue
            try:
                header = next(csv.reader(io.StringIO(candidate)), [])
            except csv.Error:
                header = []
            if len(expected & {h.strip() for h in header}) >= min(3, len(expected)):
                text = candidate
                break
            tried.append(f"{encoding}: header not recognised")
        if text is None:
            raise self.fail(path, f"cannot read the file ({'; '.join(tried)})")
        return self._csv_rows(path, text)

    def _csv_rows(self, path: Path, text: str) -> list[dict[str, Any]]:
        """The rows of a decoded CSV; ragged and over-sized rows become quarantine cases that
        name file, (first) line and column, and reading goes on."""
        max_field = int(self.settings.get("max_field_chars", DEFAULT_MAX_FIELD_CHARS))
        max_record = int(self.settings.get("max_record_chars", DEFAULT_MAX_RECORD_CHARS))
        reader = csv.reader(io.StringIO(text, newline=""))
        rows: list[dict[str, Any]] = []
        try:
            header = [h.strip() for h in next(reader, [])]
            self._check_header(path, header)
            line = reader.line_num + 1  # where the next record starts (a quoted cell may span lines)
            for cells in reader:
                start, line = line, reader.line_num + 1
                size = sum(map(len, cells))
                if size > max_field or size > max_record:
                    problem = _oversized(path, start, header, cells, max_field, max_record, size)
                    if problem is not None:
                        rows.append(problem)
                        continue
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    reason = f"row: {path.name} line {start} has {len(cells)} fields, header has {len(header)}"
                    rows.append({PARSE_ERROR: reason, RAW: ragged_record(header, cells)})
                    continue
                rows.append(dict(zip(header, cells, strict=True)))
        except csv.Error as exc:  # csv's messages name no value
            raise self.fail(path, f"line {reader.line_num}: unreadable CSV ({exc})") from None
        return rows

    def _read_xlsx(self, path: Path) -> list[dict[str, Any]]:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise self.fail(path, f"unreadable workbook, truncated? ({exc})") from None
        try:
            sheet_name = self.settings.get("sheet")
            if sheet_name and sheet_name not in workbook.sheetnames:
                raise self.fail(path, f"sheet {sheet_name}: not in the workbook")
            sheet = workbook[sheet_name] if sheet_name else workbook.worksheets[0]
            values = list(sheet.iter_rows(values_only=True))
        finally:
            workbook.close()
        header = [str(h).strip() if h is not None else "" for h in values[0]] if values else []
        expected = _header_names(self.kind_mapping)
        need = min(3, len(expected))
        if len(expected & set(header)) < need:  # an empty sheet is an unreadable file, never an empty day
            raise self.fail(
                path, f"sheet {sheet.title}: no header row (first row names fewer than {need} known columns)"
            )
        self._check_header(path, header, sheet.title)
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
        max_record = int(self.settings.get("max_record_chars", DEFAULT_MAX_RECORD_CHARS))
        for path in map(self._note_read, unit.files):
            data = self._read_bytes(path, "utf-8").removeprefix(UTF8_BOM)
            rows: list[dict[str, Any]] = []
            for line_no, line in enumerate(data.splitlines(), start=1):
                if not line.strip():
                    continue
                if len(line) > max_record:  # bytes: at least as many as characters
                    reason = f"row: {path.name} line {line_no}: {len(line)} bytes, over max_record_chars {max_record}"
                    rows.append({PARSE_ERROR: reason, RAW: None})
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
            raise self.fail(
                path, f"sheet {sheet.title}: no header row with {need} known column names in the first rows"
            )
        header = [str(v).strip() if v is not None else "" for v in grid[header_index]]
        self._check_header(path, header, sheet.title, ignore=frozenset({"序号"}))
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


def _oversized(
    path: Path, line: int, header: list[str], cells: list[str], max_field: int, max_record: int, size: int
) -> dict[str, Any] | None:
    """A quarantine case for a CSV row with a cell over `max_field` or over `max_record` in all
    (None when neither): the reason names file, line and column and the sizes, the raw record
    keeps every cell but the over-long ones (their length instead: the file is kept a while)."""
    big = [i for i, c in enumerate(cells) if len(c) > max_field]
    if not big and size <= max_record:
        return None
    if big:
        names = ", ".join(redact(header[i], record=True) if i < len(header) else f"#{i + 1}" for i in big)
        worst = max(len(cells[i]) for i in big)
        reason = f"row: {path.name} line {line} column {names}: {worst} characters, over max_field_chars {max_field}"
        kept = [f"<{len(c)} characters, not kept>" if len(c) > max_field else c for c in cells]
        return {PARSE_ERROR: reason, RAW: ragged_record(header, kept)}
    reason = f"row: {path.name} line {line}: {size} characters, over max_record_chars {max_record}"
    return {PARSE_ERROR: reason, RAW: None}


def _month_of(path: Path) -> dt.date | None:
    stem = path.stem.split("(")[0]
    try:
        return dt.datetime.strptime(stem[-7:], "%Y-%m").date()
    except ValueError:
        return None


def make_file_connector(site: Site, kind: str, source: FileDrop, mapping: ShapeMapping, retry: RetryCounter):
    classes = {"gov_export": GovExportConnector, "manual_xlsx": ManualXlsxConnector, "alarm_jsonl": AlarmJsonlConnector}
    return classes[source.shape](site, kind, source, mapping, retry)
