"""What a monthly evaluation report shows, read from the published serving database.

Reports read `serving.duckdb` only (never the warehouse being built), like the dashboards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

DISTRICT = "district"


@dataclass
class SiteEvaluation:
    site_id: str
    name_zh: str
    street_zh: str
    stars: int | None
    band_stars: int | None
    total_score: float | None
    coverage: float | None
    gate_capped: bool
    capped_by: str | None
    not_assessable_count: int
    dimensions: list[dict] = field(default_factory=list)
    indicators: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)


@dataclass
class MonthlyEvaluation:
    month: date
    framework_id: str
    framework_zh: str
    district: SiteEvaluation | None
    sites: list[SiteEvaluation]
    site_average_total_score: float | None
    sites_at_4_stars_or_more: int | None


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def month_start(month: str) -> date:
    """'2026-05' -> date(2026, 5, 1); a clear error for anything else."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        return date(year, mon, 1)
    except ValueError:
        raise ValueError(f"month must look like YYYY-MM, got {month!r}") from None


def rated_months(con: duckdb.DuckDBPyConnection, framework_id: str) -> list[str]:
    """The months ('YYYY-MM') the star ratings cover under a framework, oldest first."""
    sql = "select distinct strftime(month, '%Y-%m') as month from star_ratings where framework_id = ? order by 1"
    return [row["month"] for row in _rows(con, sql, [framework_id])]


def load_evaluation(serving_db: Path, month: str, framework_id: str, site_id: str | None = None) -> MonthlyEvaluation:
    """Everything the report needs for one month and framework (optionally one site)."""
    first = month_start(month)
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        frameworks = _rows(con, "select name_zh from dim_framework where framework_id = ?", [framework_id])
        if not frameworks:
            known = [r["framework_id"] for r in _rows(con, "select distinct framework_id from dim_framework", [])]
            raise ValueError(f"unknown framework {framework_id!r}; known: {', '.join(sorted(known))}")
        ratings = _rows(
            con,
            """
            select r.site_id, s.name_zh, coalesce(st.name_zh, '') as street_zh, r.stars, r.band_stars,
                   r.total_score, r.coverage, r.gate_capped, r.capped_by, r.not_assessable_count
            from star_ratings r
            join dim_site s using (site_id)
            left join dim_street st on st.street_id = s.street_id
            where r.framework_id = ? and r.month = ?
            order by r.site_id = 'district' desc, r.total_score desc nulls last, r.site_id
            """,
            [framework_id, first],
        )
        if not ratings:
            months = ", ".join(rated_months(con, framework_id))
            raise ValueError(f"no ratings for {month} under {framework_id}; months available: {months}")
        evaluations = []
        for row in ratings:
            if site_id and row["site_id"] not in (site_id, DISTRICT):
                continue
            evaluation = SiteEvaluation(
                site_id=row["site_id"],
                name_zh=row["name_zh"],
                street_zh=row["street_zh"],
                stars=row["stars"],
                band_stars=row["band_stars"],
                total_score=row["total_score"],
                coverage=row["coverage"],
                gate_capped=bool(row["gate_capped"]),
                capped_by=row["capped_by"],
                not_assessable_count=int(row["not_assessable_count"] or 0),
            )
            params = [evaluation.site_id, framework_id, first]
            evaluation.dimensions = _rows(
                con,
                """
                select d.dimension_id, any_value(i.dimension_name_zh) as name_zh, d.score, d.coverage
                from dimension_scores d
                join (select distinct dimension_id, dimension_name_zh, dimension_sort_order from dim_indicator) i
                  using (dimension_id)
                where d.site_id = ? and d.framework_id = ? and d.month = ?
                group by d.dimension_id, d.score, d.coverage, i.dimension_sort_order
                order by i.dimension_sort_order
                """,
                params,
            )
            evaluation.indicators = _rows(
                con,
                """
                select s.indicator_id, i.name_zh, i.dimension_name_zh, i.unit, s.value, s.assessable,
                       s.score, s.indicator_stars, s.next_star_threshold
                from indicator_scores s join dim_indicator i using (indicator_id)
                where s.site_id = ? and s.framework_id = ? and s.month = ?
                order by i.dimension_sort_order, s.indicator_id
                """,
                params,
            )
            evaluation.gaps = _rows(
                con,
                """
                select g.gap_rank, g.indicator_id, i.name_zh, i.unit, g.current_value, g.value_needed,
                       g.points_gained, g.target_stars, g.is_gate_blocker
                from next_star_gaps g join dim_indicator i using (indicator_id)
                where g.site_id = ? and g.framework_id = ? and g.month = ? and g.gap_rank <= 3
                order by g.gap_rank
                """,
                params,
            )
            evaluations.append(evaluation)
        district = next((e for e in evaluations if e.site_id == DISTRICT), None)
        averages = _rows(
            con,
            "select site_average_total_score, sites_at_4_stars_or_more from district_ratings"
            " where framework_id = ? and month = ?",
            [framework_id, first],
        )
        average = averages[0] if averages else {}
        return MonthlyEvaluation(
            month=first,
            framework_id=framework_id,
            framework_zh=frameworks[0]["name_zh"],
            district=district,
            sites=[e for e in evaluations if e.site_id != DISTRICT],
            site_average_total_score=average.get("site_average_total_score"),
            sites_at_4_stars_or_more=average.get("sites_at_4_stars_or_more"),
        )
    finally:
        con.close()


def stars_text(stars: int | None) -> str:
    """4 -> '★★★★☆'; None -> '—'."""
    if stars is None:
        return "—"
    return "★" * int(stars) + "☆" * (5 - int(stars))


def format_value(value: float | None, unit: str | None) -> str:
    """An indicator value the way an official reads it: ratios as percentages."""
    if value is None:
        return "无数据"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "minutes":
        return f"{value:.1f} 分钟"
    if unit in ("days", "working_days"):
        return f"{value:.1f} 天"
    return f"{value:.2f}"


def gap_effect(gap: dict) -> str:
    """What closing a gap does: lift a gate cap, or add points."""
    if gap.get("is_gate_blocker"):
        return f"可解除星级封顶（目标 {stars_text(gap.get('target_stars'))}）"
    return f"可增加 {gap.get('points_gained') or 0:.1f} 分"
