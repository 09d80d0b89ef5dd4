"""The expectation suites, as reviewed code built from the contract and rules.yml.

Per landed kind there are two suites:
- `landing.<kind>.schema` runs on a small frame with one row per column of the partition
  (name, dtype), so a missing, renamed, added or retyped column is reported as such
  instead of making column expectations raise;
- `landing.<kind>` runs on the rows of many day partitions at once (conformed to the
  contract's columns), each row carrying its partition's day (`_partition_day`) and its
  own local day (`_row_day`), so every check is row by row and holds per partition.
`landing.<kind>.batch` is the content suite for a frame of many sites' partitions (each row
also carries its partition's site, `_partition_site`): the same checks, with the two that
depend on the site stated per row (site_id equals the partition's site; keys unique per
site and day). A pass of it is a pass of `landing.<kind>` for every partition in the frame.
`landing.partition` runs on a profile with one row per (site, kind, day) partition (file
present and readable, rows landed and quarantined, row-count bounds from the registry and
the previous days). The site is a `$PARAMETER` and the per-partition bounds are columns
of the profile, so the suites themselves are static and reviewable.

Every expectation carries `meta.rule` (the rule name in rules.yml) and a GX severity.
"""

from __future__ import annotations

from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity

from expectations.rules import PANDAS_TYPES, kind_rules, load_rules, mart_severity, severity

PARTITION_SUITE = "landing.partition"
# Columns the landing validator adds to a content frame: the partition's local day (from the
# file's folder) and the row's own local day (its day column, floored). Natural keys are
# unique per partition day, and a row belongs in its partition when the two are equal.
PARTITION_DAY = "_partition_day"
ROW_DAY = "_row_day"
# The site of each row's partition (from the folder), in a frame that holds many sites' partitions.
PARTITION_SITE = "_partition_site"


def _meta(rule: str, column: str | None = None, description: str = "") -> dict[str, Any]:
    return {"rule": rule, "column": column, "description": description}


def _sev(rule: str) -> FailureSeverity:
    return FailureSeverity(severity(rule))


def _suite(name: str, expectations: list[Any]) -> gx.ExpectationSuite:
    """A suite built detached from any store.

    Calling `add_expectation` on a suite whose name is already stored makes GX write the
    stored suite on every call (racing other processes); the constructor does not. GX logs
    and drops an invalid expectation there, so a dropped one is an error here.
    """
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    if len(suite.expectations) != len(expectations):
        raise ValueError(f"suite {name}: {len(expectations) - len(suite.expectations)} expectation(s) were invalid")
    return suite


def schema_suite_name(kind: str) -> str:
    return f"landing.{kind}.schema"


def content_suite_name(kind: str) -> str:
    return f"landing.{kind}"


def batch_suite_name(kind: str) -> str:
    return f"landing.{kind}.batch"


def build_schema_suite(kind: str) -> gx.ExpectationSuite:
    """Columns and types of a partition, checked on its (column_name, dtype) frame."""
    rules = kind_rules(kind)
    expectations: list[Any] = []
    expectations.append(
        gxe.ExpectColumnDistinctValuesToEqualSet(
            column="column_name",
            value_set=list(rules.column_names),
            severity=_sev("schema_columns"),
            meta=_meta("schema_columns", None, "the partition has exactly the contract's columns"),
        )
    )
    allowed_pairs = [(c.name, dtype) for c in rules.columns for dtype in PANDAS_TYPES[c.type]]
    expectations.append(
        gxe.ExpectColumnPairValuesToBeInSet(
            column_A="column_name",
            column_B="dtype",
            value_pairs_set=allowed_pairs,
            ignore_row_if="neither",
            severity=_sev("column_type"),
            meta=_meta("column_type", None, "every column has the contract's type"),
        )
    )
    return _suite(schema_suite_name(kind), expectations)


def build_content_suite(kind: str, across_sites: bool = False) -> gx.ExpectationSuite:
    """The rows of a partition: nulls, vocabularies, ranges, keys, its day, its size.

    `across_sites`: the batch variant (`landing.<kind>.batch`) for a frame of many sites'
    partitions: keys unique per (_partition_site, _partition_day) and site_id equal to
    _partition_site, so no check needs the site as a parameter. Same rules, columns and
    severities, so its results map one to one onto this suite's (by `meta.rule` and column).
    """
    rules = kind_rules(kind)
    expectations: list[Any] = []
    add = expectations.append
    for col in rules.columns:
        metadata = col.name.startswith("_") or col.name == "site_id"
        if not col.nullable:
            rule = "metadata_not_null" if metadata else "not_null"
            add(gxe.ExpectColumnValuesToNotBeNull(column=col.name, severity=_sev(rule), meta=_meta(rule, col.name)))
        if col.values is not None:
            add(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col.name,
                    value_set=list(col.values),
                    severity=_sev("value_set"),
                    meta=_meta("value_set", col.name),
                )
            )
        if col.range is not None:
            add(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col.name,
                    min_value=col.range[0],
                    max_value=col.range[1],
                    severity=_sev("value_range"),
                    meta=_meta("value_range", col.name),
                )
            )
    key = list(rules.natural_key)
    partition = [PARTITION_SITE, PARTITION_DAY] if across_sites else [PARTITION_DAY]
    add(
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[*partition, *key],  # unique within each day partition (register snapshots repeat keys)
            severity=_sev("natural_key_unique"),
            meta=_meta("natural_key_unique", ",".join(key)),
        )
    )
    site_meta = _meta("site_matches_partition", "site_id", "rows belong to the partition's site")
    if across_sites:
        add(
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="site_id",
                column_B=PARTITION_SITE,
                ignore_row_if="either_value_is_missing",  # as the value-set check, which skips nulls
                severity=_sev("site_matches_partition"),
                meta=site_meta,
            )
        )
    else:
        add(
            gxe.ExpectColumnValuesToBeInSet(
                column="site_id",
                value_set={"$PARAMETER": "site_ids"},
                severity=_sev("site_matches_partition"),
                meta=site_meta,
            )
        )
    add(
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A=ROW_DAY,
            column_B=PARTITION_DAY,
            ignore_row_if="either_value_is_missing",
            severity=_sev("day_inside_partition"),
            meta=_meta("day_inside_partition", rules.day_column, "rows fall inside the partition's local day"),
        )
    )
    for later, earlier in rules.time_order:
        add(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                severity=_sev("time_order"),
                meta=_meta("time_order", f"{later}>={earlier}", f"{later} is not before {earlier}"),
            )
        )
    return _suite(batch_suite_name(kind) if across_sites else content_suite_name(kind), expectations)


# Checks of the partition profile that concern its rows: not reported for an unreadable partition.
ROW_COUNT_RULES = ("rows_vs_registry_min", "rows_vs_registry_max", "rows_vs_history")


def build_partition_suite() -> gx.ExpectationSuite:
    """Each partition as a file: present, readable, not mostly quarantined, a plausible row count.

    Row-count bounds differ per partition, so they are columns of the profile (null: no
    bound) compared with `landed_rows`; rows_vs_history is two comparisons, one outcome.
    """
    share = load_rules()["quarantine_share"]
    expectations: list[Any] = []
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="present",
            value_set=[True],
            severity=_sev("partition_present"),
            meta=_meta("partition_present", "present", "the day was delivered (ingestion writes even empty days)"),
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="readable",
            value_set=[True],
            severity=FailureSeverity.CRITICAL,
            meta=_meta("partition_readable", "readable", "the Parquet file(s) of the partition can be read"),
        )
    )
    for rule, limit, column in (
        ("quarantine_share_warning", share["warning_above"], "quarantined_share"),
        ("quarantine_share_critical", share["critical_above"], "quarantined_share_counted"),
    ):
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=0.0,
                max_value=float(limit),
                severity=_sev(rule),
                meta=_meta(rule, column, f"at most {limit:.0%} of the rows quarantined"),
            )
        )
    for rule, larger, smaller, description in (
        ("rows_vs_registry_min", "landed_rows", "rows_registry_min", "enough rows for the site's size"),
        ("rows_vs_registry_max", "rows_registry_max", "landed_rows", "not far more rows than the site's size explains"),
        ("rows_vs_history", "landed_rows", "rows_history_min", "row count near the previous days' median"),
        ("rows_vs_history", "rows_history_max", "landed_rows", "row count near the previous days' median"),
    ):
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=larger,
                column_B=smaller,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                severity=_sev(rule),
                meta=_meta(rule, None, description),
            )
        )
    return _suite(PARTITION_SUITE, expectations)


# --- marts -------------------------------------------------------------------------------


def _msev(rule: str) -> FailureSeverity:
    return FailureSeverity(mart_severity(rule))


def build_mart_suite(name: str, checks: list[dict[str, Any]]) -> gx.ExpectationSuite:
    """A mart suite from a list of declarative checks (MART_CHECKS in expectations/marts.py)."""
    expectations: list[Any] = []
    for check in checks:
        rule = check["rule"]
        column = check.get("column")
        if check["type"] == "between":
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=check.get("min"),
                    max_value=check.get("max"),
                    severity=_msev(rule),
                    meta=_meta(rule, column, check.get("description", "")),
                )
            )
        elif check["type"] == "not_null":
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column, severity=_msev(rule), meta=_meta(rule, column, check.get("description", ""))
                )
            )
        elif check["type"] == "unique":
            expectations.append(
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=check["columns"],
                    severity=_msev(rule),
                    meta=_meta(rule, ",".join(check["columns"]), check.get("description", "")),
                )
            )
        elif check["type"] == "sites_present":
            expectations.append(
                gxe.ExpectColumnDistinctValuesToContainSet(
                    column=column,
                    value_set={"$PARAMETER": "site_ids"},
                    severity=_msev(rule),
                    meta=_meta(rule, column, check.get("description", "")),
                )
            )
        else:
            raise ValueError(f"mart check type {check['type']!r} is unknown")
    return _suite(f"marts.{name}", expectations)
