"""The GX side: one file data context per process, suites registered once, pandas batches.

Why pandas: GX 1.24's SQL datasource on DuckDB reads each metric's result after its
connection has closed, so every expectation fails without raising (see
../shared/stack.md). Partitions are read through DuckDB into pandas instead (many days
in one frame, see expectations/landing.py), and validated in one process with one context:
importing GX and building a context costs seconds, and each GX run costs about 10 ms of
CPU per expectation before it looks at any data, so runs are few and batches large.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx
import great_expectations.execution_engine.pandas_execution_engine as gx_pandas_engine
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.exceptions import GreatExpectationsError

from expectations.results import DataQualityPipelineError

PACKAGE_DIR = Path(__file__).resolve().parent
DATASOURCE = "smartcomm"
FINGERPRINT = "smartcomm_fingerprint"  # suite meta: which code-built version is stored
# Pass/fail with counts and up to 10 failing values (the examples in dq_results). SUMMARY
# would add the failing rows' index list and an index query: two copies of the whole
# frame per expectation.
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 10}
# Only whether each expectation held: for a many-day batch whose failures are re-checked per day.
BOOLEAN_ONLY: dict[str, Any] = {"result_format": "BOOLEAN_ONLY"}

# GX fingerprints every in-memory batch under 1 GB with an md5 over pandas' hash of every
# value (batch_markers.pandas_data_fingerprint), which nothing here reads; on a month of
# passages that hash cost more than all the expectations together. 0 turns it off.
# (tests/expectations check the setting still exists in the installed GX.)
gx_pandas_engine.HASH_THRESHOLD = 0


def fingerprint(suite: gx.ExpectationSuite) -> str:
    """A digest of the suite's name and expectations as built from code (ids left out)."""
    configs = [{**c.to_json_dict(), "id": None} for c in suite.expectation_configurations]
    return hashlib.sha256(json.dumps([suite.name, configs], sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_gx_root() -> Path:
    """The GX project root: $SMARTCOMM_GX_DIR or expectations/; the context is `<root>/gx/` (git-ignored)."""
    return Path(os.environ.get("SMARTCOMM_GX_DIR") or PACKAGE_DIR)


def _raised(exception_info: dict[str, Any] | None) -> str | None:
    """The message of an exception GX caught while computing an expectation, if any.

    GX reports either one {raised_exception, exception_message} dict, or one per metric.
    """
    if not exception_info:
        return None
    if "raised_exception" in exception_info:
        if not exception_info["raised_exception"]:
            return None
        return exception_info.get("exception_message") or "error"
    for info in exception_info.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return info.get("exception_message") or "error"
    return None


class GxEngine:
    """A GX file context with the suites registered; `run()` validates one dataframe."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else default_gx_root()
        self.root.mkdir(parents=True, exist_ok=True)
        with self._store_lock():
            self.context = gx.get_context(mode="file", project_root_dir=str(self.root))
            self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
            try:  # the stored one keeps its assets (add_or_update would replace it with an empty one)
                self.datasource = self.context.data_sources.get(DATASOURCE)
            except KeyError:
                self.datasource = self.context.data_sources.add_pandas(DATASOURCE)
        self._definitions: dict[str, Any] = {}

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        """Serialize writes of the context's config, suites and definitions across processes.

        Parallel Airflow tasks share one GX project; its JSON stores are not written atomically.
        """
        lock = self.root / "gx" / ".store.lock"  # inside the (git-ignored) context folder
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def register(self, suite: gx.ExpectationSuite) -> None:
        """Store the suite (from code) and its validation definition, replacing older versions.

        A suite stored with the same fingerprint (of its expectations, in `meta`) is loaded, not
        written again: each write rewrites GX's JSON and YAML stores, which cost ~0.5 s per suite,
        paid by every new process (each evaluation run) for every kind before this check.
        """
        suite.meta[FINGERPRINT] = fingerprint(suite)
        with self._store_lock():
            try:
                definition = self.context.validation_definitions.get(suite.name)
            except (GreatExpectationsError, LookupError, ValueError):
                # not stored, or stored by a process whose assets this context has not loaded
                # (pydantic's ValidationError is a ValueError): store it from here
                definition = None
            if definition is not None and definition.suite.meta.get(FINGERPRINT) == suite.meta[FINGERPRINT]:
                self._definitions[suite.name] = definition
            else:
                self._register(suite)

    def _register(self, suite: gx.ExpectationSuite) -> None:
        name = suite.name
        try:
            asset = self.datasource.get_asset(name)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(name)
        try:
            batch = asset.get_batch_definition("whole")
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe("whole")
        stored = self.context.suites.add_or_update(suite)
        definition = gx.ValidationDefinition(name=name, data=batch, suite=stored)
        self._definitions[name] = self.context.validation_definitions.add_or_update(definition)

    def is_registered(self, name: str) -> bool:
        return name in self._definitions

    def run(
        self,
        suite_name: str,
        frame: pd.DataFrame,
        parameters: dict[str, Any] | None,
        run_name: str,
        result_format: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Validate `frame` with a registered suite and store the result (Data Docs); the
        per-expectation results, or DataQualityPipelineError if any raised."""
        definition = self._definitions[suite_name]
        try:
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters or {},
                result_format=result_format or RESULT_FORMAT,
                run_id=RunIdentifier(run_name=run_name),
            )
        except GreatExpectationsError as exc:
            raise DataQualityPipelineError(f"suite {suite_name}: GX failed before checking the data: {exc}") from exc
        return self._checked(suite_name, result)

    def recheck(
        self,
        suite_name: str,
        expectations: list[Any],
        frame: pd.DataFrame,
        parameters: dict[str, Any] | None,
        result_format: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Validate `frame` with some expectations of a registered suite, not stored.

        For the days of a many-day batch once a check failed on the batch: which days failed,
        their counts and failing values. `expectations` are fresh objects (built from code).
        """
        batch_definition = self._definitions[suite_name].batch_definition
        suite = gx.ExpectationSuite(name=f"{suite_name}.recheck", expectations=expectations)
        try:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(
                suite, result_format=result_format or RESULT_FORMAT, expectation_parameters=parameters or {}
            )
        except GreatExpectationsError as exc:
            raise DataQualityPipelineError(f"suite {suite_name}: GX failed before checking the data: {exc}") from exc
        return self._checked(suite_name, result)

    @staticmethod
    def _checked(suite_name: str, result: Any) -> list[Any]:
        broken = [
            f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')}): {msg}"
            for r in result.results
            if (msg := _raised(r.exception_info))
        ]
        if broken:
            raise DataQualityPipelineError(
                f"suite {suite_name}: {len(broken)} expectation(s) raised instead of checking the data: "
                + "; ".join(broken[:5])
            )
        return list(result.results)

    def build_docs(self) -> Path:
        """Build the static Data Docs site; the path of its index.html."""
        self.context.build_data_docs()
        return self.root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
