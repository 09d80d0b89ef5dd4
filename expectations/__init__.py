"""Great Expectations suites and checkpoints, as code, for landed partitions and evaluation marts."""
