"""Query windows: local days cut into vendor-sized, half-open [start, end) windows."""

from __future__ import annotations

import datetime as dt

from ingestion.connectors import Unit
from ingestion.timeutil import LOCAL_TZ


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return dt.date(year, month, min(day.day, last[month - 1]))


def split_days(
    first_day: dt.date,
    last_day: dt.date,
    *,
    window_days: int,
    max_days: int | None = None,
    max_months: int | None = None,
) -> list[tuple[dt.date, dt.date]]:
    """[first_day, last_day] as (start, end_exclusive) day pairs no longer than any limit."""
    if last_day < first_day:
        raise ValueError(f"last day {last_day} is before first day {first_day}")
    windows = []
    start = first_day
    stop = last_day + dt.timedelta(days=1)
    while start < stop:
        end = start + dt.timedelta(days=window_days)
        if max_days is not None:
            end = min(end, start + dt.timedelta(days=max_days))
        if max_months is not None:
            end = min(end, add_months(start, max_months))
        end = min(end, stop)
        windows.append((start, end))
        start = end
    return windows


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def window_units(windows: list[tuple[dt.date, dt.date]]) -> list[Unit]:
    """Query units for (start, end_exclusive) day windows, listed on their last day."""
    return [
        Unit(
            day=end - dt.timedelta(days=1),
            label=f"{start}..{end}",
            start=local_midnight(start),
            end=local_midnight(end),
        )
        for start, end in windows
    ]
