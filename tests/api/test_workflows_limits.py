"""Run limits from the settings end a run with a clear error."""

from __future__ import annotations

from pathlib import Path

import httpx

from openify.app import create_app
from openify.settings import Settings, UploadSettings, WorkflowSettings
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import ECHO
from tests.conftest import DSL_DIR, import_app


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


async def test_file_count_limit_refuses_runs_and_chatflow_messages(tmp_path: Path, database_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        upload=UploadSettings(workflow_file_upload_limit=2),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        kit = import_app(app.state.services, ECHO)
        flow = import_app(app.state.services, DSL_DIR / "20-chatflow-0.5.0-conversation-var-v1-overwrite.yml")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            up = await client.post(
                "/v1/files/upload", headers=kit.auth, data={"user": "u"}, files={"file": ("a.txt", b"hi")}
            )
            ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": up.json()["id"]}
            body = {"inputs": {"name": "A"}, "user": "u", "response_mode": "blocking"}
            ok = await client.post("/v1/workflows/run", headers=kit.auth, json={**body, "files": [ref, ref]})
            assert ok.json()["data"]["status"] == "succeeded", ok.text
            r = await client.post("/v1/workflows/run", headers=kit.auth, json={**body, "files": [ref, ref, ref]})
            err = assert_dify_error(r, 400, "invalid_param")
            assert err["message"] == "Number of files exceeds the maximum limit 2"
            turn = {"inputs": {}, "query": "q", "user": "u", "response_mode": "blocking", "files": [ref] * 3}
            r = await client.post("/v1/chat-messages", headers=flow.auth, json=turn)
            assert_dify_error(r, 400, "invalid_param")
            # Refused before anything is stored: no conversation was started.
            convs = await client.get("/v1/conversations", headers=flow.auth, params={"user": "u"})
            assert convs.json()["data"] == []
