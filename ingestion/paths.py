"""Where the platform keeps its files. One place, so every stage agrees.

Everything lives under the data directory ($SMARTCOMM_DATA_DIR, default `<repo>/data`):

    data/landing/<kind>/site=<site_id>/date=<YYYY-MM-DD>/   clean Parquet partitions
    data/landing/_quarantine/<kind>/site=<site_id>/date=<YYYY-MM-DD>/   rejected rows + reason
    data/landing/_meta/pseudonym_key.json   fingerprint of the pseudonym key (ingestion/landing_key.py)
    data/state/state.duckdb          watermarks and load audit (not the warehouse)
    data/warehouse/warehouse.duckdb  dbt's database: the one writer
    data/warehouse/serving.duckdb    published copy that dashboards read (read-only)
    data/alerts/alerts.jsonl         alert records (pipeline/alerts.py)
    data/logs/, data/airflow/logs/   process and task logs
    data/drops/<site_id>/...         where file-based vendors drop their files; landed ones
                                     wait in <drop dir>/_landed/ for the retention period

Everything the platform writes here holds personal data or its pseudonyms, so folders are
0700 and files 0600, whatever the umask (`make_private_dir`, `private_file`), and the entry
points set umask 077 for what other libraries write (ingestion.hardening).
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
    def meta(self) -> Path:
        return self.landing / "_meta"

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

    @property
    def alerts_jsonl(self) -> Path:
        return self.root / "alerts" / "alerts.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    def partition(self, kind: str, site_id: str, day: str) -> Path:
        return self.landing / kind / f"site={site_id}" / f"date={day}"

    def quarantine_partition(self, kind: str, site_id: str, day: str) -> Path:
        return self.quarantine / kind / f"site={site_id}" / f"date={day}"


def data_paths(root: Path | str | None = None) -> DataPaths:
    """The data layout rooted at `root`, $SMARTCOMM_DATA_DIR, or `<repo>/data`."""
    return DataPaths(Path(root or os.environ.get("SMARTCOMM_DATA_DIR") or PROJECT_ROOT / "data").resolve())


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> Path:
    """`mkdir -p` whose new folders (parents included) are 0700 whatever the umask."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        folder.chmod(PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make a file the platform wrote readable by the service user only."""
    path.chmod(PRIVATE_FILE_MODE)
    return path
