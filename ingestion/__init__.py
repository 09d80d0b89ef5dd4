"""Connectors that pull community systems' data into the Parquet landing zone."""
