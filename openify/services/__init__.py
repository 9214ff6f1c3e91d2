"""Use cases and transactions. Below the HTTP layer: nothing here knows about requests or SSE."""
