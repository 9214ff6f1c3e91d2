"""Workflow and chatflow runs: published versions, the run service, its recorder and live event relay, the ports."""
