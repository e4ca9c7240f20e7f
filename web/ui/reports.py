"""Reports (being built)."""
