"""Programs hastack copies to the nodes and runs there (standard library only)."""
