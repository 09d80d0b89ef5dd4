"""Time normalization: every vendor time becomes a naive Asia/Shanghai local time.

Vendors send ISO 8601 with an offset, naive local strings, epoch milliseconds in UTC, or
Chinese spreadsheet text ("2024年5月1日", "2024/5/1 8:05"). The local day of a record is
decided only after this step, so a UTC instant just before midnight lands on the right day.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_UTC = dt.UTC
_EPOCH_UTC = dt.datetime(1970, 1, 1)
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)

_DATE_PART = re.compile(
    r"^(?:(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?"  # 2026年1月5日
    r"|(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"  # 2026-01-05, 2026/1/5, 2026.01.05
    r"|(\d{4})(\d{2})(\d{2}))"  # 20260105
    r"(?:[ T]+(\d{1,2})[:：](\d{2})(?:[:：](\d{2})(?:\.(\d{1,6}))?)?)?$"  # optional 9:05, 09:05:30
)


def utc_now() -> dt.datetime:
    """The current UTC instant as a naive datetime (the `*_utc` convention)."""
    return dt.datetime.now(_UTC).replace(tzinfo=None)


def from_epoch_ms(ms: int | float) -> dt.datetime:
    """Epoch milliseconds (UTC) as local naive time."""
    utc = _EPOCH_UTC + dt.timedelta(milliseconds=int(ms))
    return _aware_to_local(utc.replace(tzinfo=_UTC))


def _aware_to_local(value: dt.datetime) -> dt.datetime:
    offset = value.utcoffset()
    if offset == dt.timedelta(hours=8):  # fast path: Asia/Shanghai has kept +08:00 since 1991
        return value.replace(tzinfo=None)
    return value.astimezone(LOCAL_TZ).replace(tzinfo=None)


def _parse_text(text: str) -> dt.datetime:
    if len(text) == 25 and text.endswith("+08:00"):  # the common vendor form, without tz objects
        try:
            return dt.datetime.fromisoformat(text[:19])
        except ValueError:
            pass
    text = text.strip()
    if text.isdigit() and len(text) >= 12:  # epoch milliseconds sent as a string (type drift)
        return from_epoch_ms(int(text))
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is not None:
        return _aware_to_local(parsed) if parsed.tzinfo is not None else parsed
    match = _DATE_PART.match(text)
    if match:
        g = match.groups()
        year, month, day = next(g[i : i + 3] for i in (0, 3, 6) if g[i] is not None)
        hour, minute, second, fraction = g[9:13]
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    raise ValueError(f"unrecognised time format {text!r}")


def to_local_naive(value: object) -> dt.datetime:
    """Any vendor time as naive Asia/Shanghai local time.

    Naive inputs are taken as local already; numbers are epoch milliseconds in UTC, except
    small numbers (< 1e6), which are Excel serial days as spreadsheets store them.
    """
    if isinstance(value, dt.datetime):
        return _aware_to_local(value) if value.tzinfo is not None else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        if 0 < value < 1_000_000:
            return _EXCEL_EPOCH + dt.timedelta(days=float(value))
        return from_epoch_ms(value)
    if isinstance(value, str):
        return _parse_text(value)
    raise ValueError(f"cannot read {type(value).__name__} as a time")


def to_local_date(value: object) -> dt.date:
    """A local calendar date from a date, a time or text."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return to_local_naive(value).date()


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local day as aware datetimes (for vendor queries)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
    return start, start + dt.timedelta(days=1)


def local_days_of(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last local day an aware, half-open interval [start, end) touches."""
    return start.astimezone(LOCAL_TZ).date(), (end.astimezone(LOCAL_TZ) - dt.timedelta(microseconds=1)).date()


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every local day from start to end, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
