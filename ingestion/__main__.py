"""`python -m ingestion ...`: see ingestion/cli.py."""

from ingestion.cli import main

raise SystemExit(main())
