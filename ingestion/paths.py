"""Where the platform keeps its files. One place, so every stage agrees.

Everything lives under the data directory ($SMARTCOMM_DATA_DIR, default `<repo>/data`):

    data/landing/<kind>/site=<site_id>/date=<YYYY-MM-DD>/   clean Parquet partitions
    data/landing/_quarantine/<kind>/site=<site_id>/date=<YYYY-MM-DD>/   rejected rows + reason
    data/state/state.duckdb          watermarks and load audit (not the warehouse)
    data/warehouse/warehouse.duckdb  dbt's database: the one writer
    data/warehouse/serving.duckdb    published copy that dashboards read (read-only)
    data/drops/<site_id>/...         where file-based vendors drop their files
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ingestion.registry import PROJECT_ROOT


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def quarantine(self) -> Path:
        return self.landing / "_quarantine"

    @property
    def state_db(self) -> Path:
        return self.root / "state" / "state.duckdb"

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def warehouse_db(self) -> Path:
        return self.warehouse_dir / "warehouse.duckdb"

    @property
    def serving_db(self) -> Path:
        return self.warehouse_dir / "serving.duckdb"

    @property
    def drops(self) -> Path:
        return self.root / "drops"

    def partition(self, kind: str, site_id: str, day: str) -> Path:
        return self.landing / kind / f"site={site_id}" / f"date={day}"

    def quarantine_partition(self, kind: str, site_id: str, day: str) -> Path:
        return self.quarantine / kind / f"site={site_id}" / f"date={day}"


def data_paths(root: Path | str | None = None) -> DataPaths:
    """The data layout rooted at `root`, $SMARTCOMM_DATA_DIR, or `<repo>/data`."""
    return DataPaths(Path(root or os.environ.get("SMARTCOMM_DATA_DIR") or PROJECT_ROOT / "data").resolve())
