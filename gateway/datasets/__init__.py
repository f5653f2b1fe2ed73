"""The metadata-store part of datasets: their tables (the domain lives in `writeback.datasets`)."""
