"""The one workspace an Openify server is: Dify's bodies name it as `tenant_id`."""

from __future__ import annotations

# Dify's tenant ids are UUIDs (its spec types `tenant_id` as `format: uuid`); Openify has a single workspace, so a
# fixed one. Clients only echo it.
WORKSPACE_ID = "6f70656e-6966-4000-8000-000000000001"
