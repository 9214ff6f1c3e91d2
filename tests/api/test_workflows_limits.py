"""Run limits from the settings end a run with a clear error."""

from __future__ import annotations

from pathlib import Path

import httpx

from openify.app import create_app
from openify.settings import Settings, WorkflowSettings
from tests.api.workflow_kit import ECHO
from tests.conftest import import_app


async def test_step_limit_ends_the_run(tmp_path: Path, database_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", database_url=database_url, workflow=WorkflowSettings(max_steps=2)
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        kit = import_app(app.state.services, ECHO)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "A"}, "user": "u"})
            data = r.json()["data"]
            assert (data["status"], data["error"]) == ("failed", "Max steps 2 reached.")
            stored = (await client.get(f"/v1/workflows/run/{data['id']}", headers=kit.auth)).json()
            assert stored["status"] == "failed" and stored["error"] == "Max steps 2 reached."
