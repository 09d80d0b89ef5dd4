"""The evaluation PDF: a district summary page with a chart, then one page per site.

Chinese needs an embedded TrueType CJK font; we use WenQuanYi Micro Hei from Debian's
`fonts-wqy-microhei` (installed by `make setup`), never a download.
"""

from __future__ import annotations

from pathlib import Path

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from reporting.data import MonthlyEvaluation, SiteEvaluation, format_value, gap_effect, stars_text

FONT_NAME = "WenQuanYiMicroHei"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)


def register_cjk_font() -> str:
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    for candidate in FONT_CANDIDATES:
        if candidate.exists():
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(candidate), subfontIndex=0))
            return FONT_NAME
    raise FileNotFoundError(
        "no CJK TrueType font found; install Debian's fonts-wqy-microhei (make setup-system) "
        f"looked in: {', '.join(map(str, FONT_CANDIDATES))}"
    )


def _styles(font: str) -> dict[str, ParagraphStyle]:
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=18, leading=24, spaceAfter=6),
        "h2": ParagraphStyle("h2", fontName=font, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=font, fontSize=10, leading=14),
        "small": ParagraphStyle("small", fontName=font, fontSize=8, leading=11, textColor=colors.grey),
    }


def _table(rows: list[list[str]], font: str, widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9BB7D4")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _score_chart(sites: list[SiteEvaluation], font: str) -> Drawing:
    height = 24 + 18 * len(sites)
    drawing = Drawing(170 * mm, height)
    chart = HorizontalBarChart()
    chart.x, chart.y, chart.width, chart.height = 60 * mm, 10, 100 * mm, height - 20
    ordered = list(reversed(sites))
    chart.data = [[s.total_score or 0 for s in ordered]]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.categoryAxis.categoryNames = [s.name_zh for s in ordered]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 8
    chart.valueAxis.labels.fontName = font
    chart.bars[0].fillColor = colors.HexColor("#2F75B5")
    drawing.add(chart)
    for band in (60, 70, 80, 90):
        x = chart.x + chart.width * band / 100
        drawing.add(String(x - 6, height - 8, f"{band // 10 - 4}★", fontName=font, fontSize=7))
    return drawing


def write_pdf(evaluation: MonthlyEvaluation, path: Path) -> Path:
    font = register_cjk_font()
    styles = _styles(font)
    month = evaluation.month.strftime("%Y年%m月")
    story: list = [Paragraph(f"城阳区新型智慧社区试点评价报告（{month}）", styles["title"])]
    story.append(Paragraph(f"评价体系：{evaluation.framework_zh}", styles["body"]))
    if evaluation.district:
        d = evaluation.district
        story.append(
            Paragraph(
                f"全区（汇总口径）星级 {stars_text(d.stars)}，总分 {d.total_score or 0:.1f}；"
                f"目标四星、力争五星。试点平均总分 {evaluation.site_average_total_score or 0:.1f}，"
                f"四星及以上 {evaluation.sites_at_4_stars_or_more or 0} 个。",
                styles["body"],
            )
        )
    story.append(Paragraph("各试点星级", styles["h2"]))
    rows = [["社区/街区", "街道", "星级", "总分", "覆盖率", "首要差距"]]
    for site in evaluation.sites:
        gap = site.gaps[0]["name_zh"] if site.gaps else "—"
        rows.append(
            [
                site.name_zh,
                site.street_zh,
                stars_text(site.stars),
                f"{site.total_score or 0:.1f}",
                f"{(site.coverage or 0) * 100:.0f}%",
                gap,
            ]
        )
    story.append(_table(rows, font, [45 * mm, 22 * mm, 22 * mm, 16 * mm, 16 * mm, 50 * mm]))
    story.append(Spacer(1, 6 * mm))
    story.append(Paragraph("总分排名", styles["h2"]))
    story.append(_score_chart(evaluation.sites, font))
    story.append(Spacer(1, 8 * mm))
    story.append(Paragraph("数据来源：试点社区各业务系统，经平台校验后计算；指标口径见标准数据模型。", styles["small"]))

    for site in evaluation.sites:
        story.append(PageBreak())
        story.append(Paragraph(f"{site.name_zh}（{site.street_zh}）", styles["title"]))
        capped = "，受门槛规则封顶" if site.gate_capped else ""
        story.append(
            Paragraph(
                f"星级 {stars_text(site.stars)}{capped}；总分 {site.total_score or 0:.1f}；"
                f"指标覆盖率 {(site.coverage or 0) * 100:.0f}%；不可评价指标 {site.not_assessable_count} 项。",
                styles["body"],
            )
        )
        if site.dimensions:
            story.append(Paragraph("维度得分", styles["h2"]))
            dims = [["维度", "得分"]] + [[d["name_zh"], f"{d['score'] or 0:.1f}"] for d in site.dimensions]
            story.append(_table(dims, font, [60 * mm, 30 * mm]))
        story.append(Paragraph("指标", styles["h2"]))
        inds = [["维度", "指标", "数值", "得分", "星级"]]
        for ind in site.indicators:
            value = format_value(ind["value"], ind["unit"]) if ind["assessable"] else "不可评价"
            inds.append(
                [
                    ind["dimension_name_zh"],
                    ind["name_zh"],
                    value,
                    f"{ind['score'] or 0:.0f}",
                    stars_text(ind["indicator_stars"]),
                ]
            )
        story.append(_table(inds, font, [24 * mm, 50 * mm, 28 * mm, 16 * mm, 26 * mm]))
        if site.gaps:
            story.append(Paragraph("提升到下一星的优先指标", styles["h2"]))
            for gap in site.gaps:
                story.append(
                    Paragraph(
                        f"{gap['gap_rank']}. {gap['name_zh']}：由 {format_value(gap['current_value'], gap['unit'])}"
                        f" 提升到 {format_value(gap['value_needed'], gap['unit'])}，{gap_effect(gap)}",
                        styles["body"],
                    )
                )
    SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, title=f"城阳区智慧社区评价 {month}"
    ).build(story)
    return path
