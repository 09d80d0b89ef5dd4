"""A result cache that forgets everything when a new serving database is published.

Superset caches chart results by query. After the pipeline publishes a new
`serving.duckdb` (a new file renamed into place), those results are stale. Instead of
asking the pipeline to talk to Superset, every cache key carries the identity of the
serving file (inode and modification time), so the first query after a publish misses
the cache and reads the new file. Old entries expire on their own.

Runs inside Superset's environment (.venv-superset); referenced from superset_config.py.
"""

from __future__ import annotations

import os
from typing import Any

from cachelib.file import FileSystemCache
from flask_caching.backends.filesystemcache import FileSystemCache as FlaskFileSystemCache


def serving_version(path: str) -> str:
    """A token that changes whenever a new file is renamed onto `path`."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "absent"
    return f"{stat.st_ino}-{stat.st_mtime_ns}"


class ServingAwareCache(FlaskFileSystemCache):
    """Flask-Caching file cache (shared by all gunicorn workers) keyed by serving-file version."""

    def __init__(self, cache_dir: str, serving_db: str = "", **kwargs: Any) -> None:
        super().__init__(cache_dir, **kwargs)
        self.serving_db = serving_db

    @classmethod
    def factory(cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> ServingAwareCache:
        kwargs.update(
            threshold=config["CACHE_THRESHOLD"],
            ignore_errors=config["CACHE_IGNORE_ERRORS"],
            serving_db=config["CACHE_SERVING_DB"],
        )
        return cls(config["CACHE_DIR"], *args, **kwargs)

    def _get_filename(self, key: str) -> str:
        if key == self._fs_count_file:
            return FileSystemCache._get_filename(self, key)
        return FileSystemCache._get_filename(self, f"{serving_version(self.serving_db)}:{key}")
