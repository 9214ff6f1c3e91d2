"""Background jobs: the JobRunner contract and its runners (in-process by default)."""
