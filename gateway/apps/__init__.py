"""Custom apps: uploaded designs with their manifest and files, instances, account mappings."""
