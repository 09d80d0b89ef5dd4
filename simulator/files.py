"""File drops: daily government-service exports (GBK CSV or XLSX), grid workers' monthly
workbooks (title row, merged cells, drifting headers, text dates) and hourly alarm JSON lines.

Files are written to a temporary name and renamed into place, so a poller never sees half
a file (unless the truncated_file fault says so).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xlsxwriter

from ingestion.registry import PROJECT_ROOT
from simulator.encode import BAD_DATE, BAD_LOCAL, broken_id_card, encode, local, spec
from simulator.world import DAY_COLUMN, LATE_KINDS, Batch, World, batch_len, day_range, stable_hash

FIXED_TIME = datetime(2026, 1, 1)
FILE_SHAPES = ("gov_export", "manual_xlsx", "alarm_jsonl")


def resolve_drop_dir(world: World, site_id: str, kind: str, drop_dir: Path | str | None = None) -> Path:
    """The site's drop folder for a kind, from the registry (`drop_dir` template)."""
    site = world.site(site_id)
    environ = dict(os.environ)
    if drop_dir is not None:
        environ["SMARTCOMM_DROP_DIR"] = str(drop_dir)
    path = Path(site.resolve(site.sources[kind].drop_dir, environ))  # type: ignore[union-attr]
    return path if path.is_absolute() else PROJECT_ROOT / path


def file_batch(world: World, site_id: str, kind: str, day: date) -> tuple[Batch, np.ndarray]:
    """Rows that go into day D's file: D's own rows that are not late plus D-1's late rows."""
    col = DAY_COLUMN[kind]
    parts: list[tuple[Batch, np.ndarray]] = []
    current = world.with_faults(site_id, kind, day)
    if batch_len(current):
        keep = ~current["_late"]
        sub = {c: v[keep] for c, v in current.items()}
        parts.append((sub, sub[col].astype("datetime64[s]").astype("int64")))
    if kind in LATE_KINDS and world.faults.data_rate("late_events", site_id, kind, day - timedelta(days=1)) > 0:
        previous = world.with_faults(site_id, kind, day - timedelta(days=1))
        if batch_len(previous) and previous["_late"].any():
            sub = {c: v[previous["_late"]] for c, v in previous.items()}
            parts.append((sub, sub[col].astype("datetime64[s]").astype("int64") + 86400))
    parts = [p for p in parts if batch_len(p[0])]
    if not parts:
        return {}, np.empty(0, dtype="int64")
    merged = {c: np.concatenate([p[0][c] for p in parts]) for c in parts[0][0]}
    listed = np.concatenate([p[1] for p in parts])
    order = np.argsort(listed, kind="stable")
    return {c: v[order] for c, v in merged.items()}, listed[order]


def _write(path: Path, data: bytes, world: World, site_id: str, kind: str, day: date) -> list[Path]:
    """Write atomically, then apply the file faults (truncated_file, duplicate_file)."""
    faults = world.faults
    if faults.take_file_fault("missing_file", site_id, kind, day):
        return []  # never delivered (data timeliness)
    if faults.take_file_fault("truncated_file", site_id, kind, day):
        data = data[: max(1, len(data) // 2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    written = [path]
    if faults.take_file_fault("duplicate_file", site_id, kind, day):
        copy = path.with_name(f"{path.stem}(1){path.suffix}")
        copy.write_bytes(data)
        written.append(copy)
    return written


def _xlsx_bytes(build: Any) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.set_properties({"created": FIXED_TIME, "author": "smartcomm simulator"})
    build(book)
    book.close()
    return buffer.getvalue()


# ---- government service export ----------------------------------------------------------------
def gov_values(b: Batch) -> list[dict[str, Any]]:
    """Gov export rows keyed by canonical name, values as the export shows them."""
    labels = spec()["gov_export"]["channel"]
    applied, completed = local(b["applied_time"]), local(b["completed_time"])
    rows = []
    for i in range(batch_len(b)):
        rating = b["rating"][i]
        rows.append(
            {
                "case_id": b["case_id"][i],
                "item_code": b["item_code"][i],
                "item_name": b["item_name"][i],
                "channel": labels[b["channel"][i]],
                "applicant_name": b["applicant_name"][i],
                "applicant_id_card": b["applicant_id_card"][i],
                "applicant_phone": b["applicant_phone"][i],
                "applicant_elderly": "是" if b["applicant_elderly"][i] else "否",
                "applied_time": applied[i],
                "completed_time": completed[i] or "",
                "promised_days": int(b["promised_days"][i]),
                "rating": "" if rating is None else int(rating),
            }
        )
    for i in np.flatnonzero(b["_malformed"] != None).tolist():  # noqa: E711
        reason, row = b["_malformed"][i], rows[i]
        if reason == "bad_timestamp":
            row["applied_time"] = BAD_LOCAL
        elif reason == "negative_duration":
            row["completed_time"] = (datetime.fromisoformat(row["applied_time"]) - timedelta(days=2)).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
    return rows


def write_gov_export(world: World, site_id: str, day: date, drop_dir: Path | str | None) -> list[Path]:
    source = world.site(site_id).sources["service_cases"]
    fmt = source.file_format  # type: ignore[union-attr]
    b, _ = file_batch(world, site_id, "service_cases", day)
    rows = gov_values(b) if batch_len(b) else []
    columns = spec()["gov_export"]["columns"]
    folder = resolve_drop_dir(world, site_id, "service_cases", drop_dir)
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([h for h, _ in columns])
        for row in rows:
            writer.writerow([row[c] for _, c in columns])
        encoding = "utf-8" if world.faults.take_file_fault("wrong_encoding", site_id, "service_cases", day) else "gbk"
        data = text.getvalue().encode(encoding)
        return _write(folder / f"gov_cases_{day:%Y%m%d}.csv", data, world, site_id, "service_cases", day)

    def build(book: Any) -> None:
        sheet = book.add_worksheet(spec()["gov_export"]["sheet"])
        stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for c, (header, _) in enumerate(columns):
            sheet.write_string(0, c, header)
        for r, row in enumerate(rows, start=1):
            for c, (_, name) in enumerate(columns):
                value = row[name]
                if name in ("applied_time", "completed_time") and value and value != BAD_LOCAL:
                    sheet.write_datetime(r, c, datetime.fromisoformat(value), stamp)
                elif isinstance(value, int):
                    sheet.write_number(r, c, value)
                elif value != "":
                    sheet.write_string(r, c, str(value))

    return _write(folder / f"gov_cases_{day:%Y%m%d}.xlsx", _xlsx_bytes(build), world, site_id, "service_cases", day)


# ---- manual spreadsheets -------------------------------------------------------------------
def _text_date(rng: np.random.Generator, moment: datetime, with_time: bool) -> str | datetime:
    formats = spec()["manual_xlsx"]["date_formats"]
    if rng.random() < 0.12:
        return moment  # a real date cell
    text = formats[int(rng.integers(0, len(formats)))].format(y=moment.year, m=moment.month, d=moment.day)
    if with_time:
        times = spec()["manual_xlsx"]["time_formats"]
        text += times[int(rng.integers(0, len(times)))].format(H=moment.hour, M=moment.minute)
    return text


def _dt(value: np.datetime64) -> datetime | None:
    return None if np.isnat(value) else value.astype("datetime64[s]").astype(datetime)


def manual_rows(kind: str, b: Batch, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Manual workbook rows keyed by canonical name, with text dates in mixed formats."""
    s = spec()
    n = batch_len(b)
    rows: list[dict[str, Any]] = []
    yes_no = {True: "是", False: "否", None: ""}
    for i in range(n):
        if kind == "service_cases":
            completed = _dt(b["completed_time"][i])
            rating = b["rating"][i]
            row = {
                "case_id": b["case_id"][i],
                "item_name": b["item_name"][i],
                "item_code": b["item_code"][i],
                "channel": s["gov_export"]["channel"][b["channel"][i]],
                "applicant_name": b["applicant_name"][i],
                "applicant_id_card": b["applicant_id_card"][i],
                "applicant_phone": b["applicant_phone"][i],
                "applicant_elderly": yes_no[bool(b["applicant_elderly"][i])],
                "applied_time": _text_date(rng, _dt(b["applied_time"][i]), True),
                "completed_time": _text_date(rng, completed, True) if completed else "",
                "promised_days": int(b["promised_days"][i]),
                "rating": "" if rating is None else int(rating),
            }
        elif kind == "register":
            verified = _dt(b["last_verified_date"][i])
            alone = b["lives_alone"][i]
            row = {
                "building": b["building"][i],
                "unit": b["unit"][i],
                "room": b["room"][i],
                "household_id": b["household_id"][i],
                "name": b["name"][i],
                "id_card": b["id_card"][i],
                "phone": b["phone"][i],
                "birth_date": _text_date(rng, _dt(b["birth_date"][i]), False),
                "lives_alone": yes_no[None if alone is None else bool(alone)],
                "last_verified_date": _text_date(rng, verified, False) if verified else "",
            }
        elif kind == "activities":
            row = {
                "activity_id": b["activity_id"][i],
                "title": b["title"][i],
                "category": b["category"][i],
                "start_time": _text_date(rng, _dt(b["start_time"][i]), True),
                "participants": int(b["participants"][i]),
            }
        elif kind == "disclosures":
            published = _dt(b["published_date"][i])
            row = {
                "disclosure_id": b["disclosure_id"][i],
                "category": s["manual_xlsx"]["disclosure_category"][b["category"][i]],
                "due_date": _text_date(rng, _dt(b["due_date"][i]), False),
                "published_date": _text_date(rng, published, False) if published else "",
            }
        elif kind == "surveys":
            row = {
                "response_id": b["response_id"][i],
                "answered_date": _text_date(rng, _dt(b["answered_date"][i]), False),
                "question_id": b["question_id"][i],
                "score": int(b["score"][i]),
                "respondent_phone": b["respondent_phone"][i] or "",
            }
        else:
            raise KeyError(f"manual_xlsx cannot deliver {kind}")
        reason = b["_malformed"][i]
        if reason == "bad_timestamp":
            target = {
                "service_cases": "applied_time",
                "register": "birth_date",
                "activities": "start_time",
                "disclosures": "due_date",
                "surveys": "answered_date",
            }[kind]
            row[target] = BAD_DATE
        elif reason == "negative_duration":
            row["completed_time"] = _text_date(rng, _dt(b["applied_time"][i]) - timedelta(days=2), True)
        elif reason == "invalid_id_checksum":
            row["id_card"] = broken_id_card(row["id_card"])
        rows.append(row)
    return rows


def write_manual(
    world: World, site_id: str, kind: str, month: date, days: list[date], drop_dir: Path | str | None
) -> list[Path]:
    site = world.site(site_id)
    parts = [file_batch(world, site_id, kind, d)[0] for d in days]
    parts = [p for p in parts if batch_len(p)]
    b = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]} if parts else {}
    rng = np.random.default_rng([world.seed, stable_hash(site_id), stable_hash(kind), month.year * 12 + month.month])
    if kind == "register" and batch_len(b):
        order = np.lexsort(
            (b["room"].astype(str), b["unit"].astype(str), np.array([int(x[:-2]) for x in b["building"]]))
        )
        b = {c: v[order] for c, v in b.items()}
    rows = manual_rows(kind, b, rng) if batch_len(b) else []
    spec_columns = spec()["manual_xlsx"]["columns"][kind]
    headers = ["序号"] + [variants[int(rng.integers(0, len(variants)))] for _, variants in spec_columns]
    names = [name for name, _ in spec_columns]
    sw = world.site_world(site_id)
    person = sw.name[int(rng.integers(0, len(sw.name)))]
    reviewer = sw.name[int(rng.integers(0, len(sw.name)))]
    title = f"{site.name_zh}{month.year}年{month.month}月{spec()['manual_xlsx']['title'][kind]}"
    blanks = int(rng.integers(2, 5))

    def build(book: Any) -> None:
        sheet = book.add_worksheet(f"{month.year}年{month.month}月")
        bold = book.add_format({"bold": True, "align": "center"})
        date_fmt = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        merge_fmt = book.add_format({"valign": "vcenter"})
        last = len(headers) - 1
        sheet.merge_range(0, 0, 0, last, title, bold)
        sheet.merge_range(1, 0, 1, last, f"填报单位：{site.name_zh}居委会    填报人：{person}", None)
        for c, header in enumerate(headers):
            sheet.write_string(2, c, header, bold)
        building_col = names.index("building") + 1 if kind == "register" else None
        for r, row in enumerate(rows):
            excel_row = 3 + r
            sheet.write_number(excel_row, 0, r + 1)
            for c, name in enumerate(names, start=1):
                if c == building_col:
                    continue
                value = row[name]
                if isinstance(value, datetime):
                    sheet.write_datetime(excel_row, c, value, date_fmt)
                elif isinstance(value, int):
                    sheet.write_number(excel_row, c, value)
                elif value:
                    sheet.write_string(excel_row, c, str(value))
        if building_col is not None:  # the building cell merged over its consecutive rows
            start = 0
            for r in range(1, len(rows) + 1):
                if r == len(rows) or rows[r]["building"] != rows[start]["building"]:
                    if r - start > 1:
                        sheet.merge_range(
                            3 + start, building_col, 3 + r - 1, building_col, rows[start]["building"], merge_fmt
                        )
                    else:
                        sheet.write_string(3 + start, building_col, rows[start]["building"])
                    start = r
        footer = 3 + len(rows) + blanks
        sheet.write_string(footer, 0, f"制表人：{person}  审核：{reviewer}")

    folder = resolve_drop_dir(world, site_id, kind, drop_dir)
    return _write(folder / f"{kind}_{month:%Y-%m}.xlsx", _xlsx_bytes(build), world, site_id, kind, month)


# ---- hourly alarm JSON lines ---------------------------------------------------------------
def write_alarm_hours(world: World, site_id: str, kind: str, day: date, drop_dir: Path | str | None) -> list[Path]:
    b, listed = file_batch(world, site_id, kind, day)
    rows = encode("alarm_jsonl", kind, b, {}, world.faults.schema_drift(site_id, kind)) if batch_len(b) else []
    hours = ((listed - (listed // 86400) * 86400) // 3600).tolist() if len(listed) else []
    folder = resolve_drop_dir(world, site_id, kind, drop_dir)
    written: list[Path] = []
    for hour in range(24):
        lines = b"".join(orjson.dumps(row) + b"\n" for row, h in zip(rows, hours, strict=True) if h == hour)
        written += _write(folder / f"{kind}_{day:%Y%m%d}{hour:02d}.jsonl", lines, world, site_id, kind, day)
    return written


def drop_files(
    world: World,
    start: date,
    end: date,
    site: str = "*",
    kind: str = "*",
    drop_dir: Path | str | None = None,
) -> list[Path]:
    """Write every file-based drop of the range (sites and kinds as the registry assigns)."""
    written: list[Path] = []
    days = day_range(start, end)
    for s in world.registry.sites:
        if site not in ("*", s.site_id):
            continue
        for k, source in s.sources.items():
            if kind not in ("*", k) or source.shape not in FILE_SHAPES:
                continue
            if source.shape == "gov_export":
                for d in days:
                    written += write_gov_export(world, s.site_id, d, drop_dir)
            elif source.shape == "alarm_jsonl":
                for d in days:
                    written += write_alarm_hours(world, s.site_id, k, d, drop_dir)
            else:
                months: dict[date, list[date]] = {}
                for d in days:
                    months.setdefault(d.replace(day=1), []).append(d)
                for month, month_days in months.items():
                    written += write_manual(world, s.site_id, k, month, month_days, drop_dir)
    return written


__all__ = ["drop_files", "file_batch", "resolve_drop_dir"]
