"""`python -m expectations ...`: see expectations/cli.py."""

from expectations.cli import main

raise SystemExit(main())
