"""Keyword (full-text) indexes, registered in `r.keyword_indexes`."""
