"""The evaluation workbook (XLSX): a summary sheet and one sheet per site."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter

from reporting.data import MonthlyEvaluation, SiteEvaluation, format_value, gap_effect, stars_text

CAPPED_BY_ZH = {
    "weight_share": "达标指标权重不足",
    "core_indicator": "核心指标未达要求",
    "weight_share_and_core": "达标权重不足且核心指标未达要求",
}


def _sheet_name(site: SiteEvaluation, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, no []:*?/\\, unique."""
    name = "".join(ch for ch in site.name_zh if ch not in "[]:*?/\\")[:28] or site.site_id[:28]
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name[:26]}-{n}", n + 1
    used.add(candidate)
    return candidate


def write_workbook(evaluation: MonthlyEvaluation, path: Path) -> Path:
    book = xlsxwriter.Workbook(str(path))
    try:
        title = book.add_format({"bold": True, "font_size": 14})
        head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        cell = book.add_format({"border": 1})
        number = book.add_format({"border": 1, "num_format": "0.0"})
        month = evaluation.month.strftime("%Y年%m月")

        summary = book.add_worksheet("汇总")
        summary.write(0, 0, f"城阳区智慧社区试点评价 {month}（{evaluation.framework_zh}）", title)
        if evaluation.district:
            d = evaluation.district
            summary.write(1, 0, f"全区星级：{stars_text(d.stars)}  总分 {d.total_score or 0:.1f}  目标：四星，力争五星")
        headers = ["社区/街区", "街道", "星级", "星数", "总分", "指标覆盖率", "不可评价指标数", "封顶原因", "首要差距"]
        for col, text in enumerate(headers):
            summary.write(3, col, text, head)
        for row, site in enumerate(evaluation.sites, start=4):
            top_gap = site.gaps[0] if site.gaps else None
            gap_text = (
                f"{top_gap['name_zh']}：{format_value(top_gap['current_value'], top_gap['unit'])} → "
                f"{format_value(top_gap['value_needed'], top_gap['unit'])}"
                if top_gap
                else ""
            )
            summary.write(row, 0, site.name_zh, cell)
            summary.write(row, 1, site.street_zh, cell)
            summary.write(row, 2, stars_text(site.stars), cell)
            summary.write_number(row, 3, site.stars or 0, cell)
            summary.write_number(row, 4, site.total_score or 0.0, number)
            summary.write_number(row, 5, (site.coverage or 0.0) * 100, number)
            summary.write_number(row, 6, site.not_assessable_count, cell)
            summary.write(row, 7, CAPPED_BY_ZH.get(site.capped_by or "", ""), cell)
            summary.write(row, 8, gap_text, cell)
        summary.set_column(0, 1, 22)
        summary.set_column(2, 7, 12)
        summary.set_column(8, 8, 48)

        used: set[str] = {"汇总"}
        for site in evaluation.sites:
            sheet = book.add_worksheet(_sheet_name(site, used))
            sheet.write(0, 0, f"{site.name_zh} {month} 评价", title)
            sheet.write(1, 0, f"星级 {stars_text(site.stars)}，总分 {site.total_score or 0:.1f}")
            columns = ["维度", "指标", "数值", "得分", "指标星级", "下一星需达到"]
            for col, text in enumerate(columns):
                sheet.write(3, col, text, head)
            for row, ind in enumerate(site.indicators, start=4):
                sheet.write(row, 0, ind["dimension_name_zh"], cell)
                sheet.write(row, 1, ind["name_zh"], cell)
                sheet.write(row, 2, format_value(ind["value"], ind["unit"]) if ind["assessable"] else "不可评价", cell)
                sheet.write_number(row, 3, ind["score"] or 0.0, number)
                sheet.write(row, 4, stars_text(ind["indicator_stars"]), cell)
                sheet.write(row, 5, format_value(ind["next_star_threshold"], ind["unit"]), cell)
            start = 6 + len(site.indicators)
            sheet.write(start, 0, "提升到下一星的优先指标", head)
            for offset, gap in enumerate(site.gaps, start=1):
                sheet.write(
                    start + offset,
                    0,
                    f"{gap['gap_rank']}. {gap['name_zh']}：{format_value(gap['current_value'], gap['unit'])}"
                    f" → {format_value(gap['value_needed'], gap['unit'])}（{gap_effect(gap)}）",
                )
            sheet.set_column(0, 1, 24)
            sheet.set_column(2, 5, 14)
    finally:
        book.close()
    return path
