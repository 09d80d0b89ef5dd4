"""Write the monthly evaluation report (XLSX + PDF, Chinese).

Example:
    python -m reporting --month 2026-05 --framework default
    python -m reporting --month 2026-05 --framework default --site vanke_meili --out reports/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ingestion.paths import data_paths
from reporting.data import load_evaluation
from reporting.pdf import write_pdf
from reporting.workbook import write_workbook


def build_report(
    month: str, framework_id: str = "default", site_id: str | None = None, out_dir: Path | None = None
) -> tuple[Path, Path]:
    """Write `<out>/evaluation_<month>_<framework>[_<site>].xlsx/.pdf` from serving.duckdb."""
    paths = data_paths()
    evaluation = load_evaluation(paths.serving_db, month, framework_id, site_id)
    out = Path(out_dir or paths.root / "reports")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"evaluation_{month}_{framework_id}" + (f"_{site_id}" if site_id else "")
    return write_workbook(evaluation, out / f"{stem}.xlsx"), write_pdf(evaluation, out / f"{stem}.pdf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reporting", description=__doc__.split("\n")[0])
    parser.add_argument("--month", required=True, help="evaluation month, YYYY-MM")
    parser.add_argument("--framework", default="default", help="framework_id (default: default)")
    parser.add_argument("--site", default=None, help="one site_id (default: all sites)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: data/reports)")
    args = parser.parse_args(argv)
    try:
        xlsx, pdf = build_report(args.month, args.framework, args.site, args.out)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"report failed: {exc}\n")
    print(f"wrote {xlsx}\nwrote {pdf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
