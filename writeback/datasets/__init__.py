"""Datasets: DuckDB part files with immutable versions, streamed uploads, the SQL sandbox."""
