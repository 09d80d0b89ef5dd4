"""Scan landed files for clear-text personal data: the bureau's evidence that none landed.

    scan_landing(paths=None) -> PiiScanReport

Reads every Parquet file under landing/ (clean partitions and quarantine) and searches
every text column for ID-card numbers with a valid GB 11643 checksum, mobile numbers and
licence plates (ingestion.pii.find_personal_data). Names cannot be found by pattern; they
are kept out by configuration (config/vendors/_personal_data.yml), which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.paths import DataPaths, data_paths
from ingestion.pii import PROVINCES, find_personal_data

# What every hit contains (a mobile or ID number has 11 digits in a row, a plate starts with a
# province and a letter): Arrow's regex picks these candidates, the exact patterns run on them.
CANDIDATE = rf"\p{{Nd}}{{11}}|[{PROVINCES}][A-Z]"  # \p{Nd}: the Unicode digits of Python's \d


@dataclass
class PiiScanReport:
    files: int = 0
    values: int = 0
    hits: list[tuple[Path, str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.hits


def scan_landing(paths: DataPaths | None = None, limit: int = 100) -> PiiScanReport:
    """Every string value of every landed Parquet file, checked; at most `limit` hits kept."""
    paths = paths or data_paths()
    report = PiiScanReport()
    for path in sorted(paths.landing.rglob("*.parquet")):
        report.files += 1
        table = pq.read_table(path)
        for name in table.column_names:
            column = table.column(name)
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                continue
            distinct = column.unique()
            report.values += len(distinct) - distinct.null_count
            candidates = distinct.filter(pc.fill_null(pc.match_substring_regex(distinct, CANDIDATE), False))
            for value in candidates.to_pylist():
                for hit in find_personal_data(value):
                    if len(report.hits) < limit:
                        report.hits.append((path, name, hit))
    return report
