"""The real DSL exports through POST /workflows/run, the export round trip, and the run log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from openify.services.container import Services
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import ECHO, FAILING, sse_events
from tests.conftest import DSL_DIR, import_app
from tests.fake_llm.server import FakeLLM

F01 = DSL_DIR / "01-workflow-0.1.0-seo-slug-generator.yml"
F08 = DSL_DIR / "08-workflow-0.3.1-loop-increment-break.yml"
F09 = DSL_DIR / "09-workflow-0.3.1-dual-switch-variable-aggregator.yml"
F10 = DSL_DIR / "10-workflow-0.3.1-iteration-flatten-disabled.yml"


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM) -> Settings:
    """The model providers the exports name, pointed at the stand-in model server."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stand_in = {"base_url": fake_llm.base_url, "api_key": "sk-test", "max_retries": 0}
    # deepseek by name (file 01); any other provider name (openai, ollama, ...) through `default`.
    providers = {
        "default": "local",
        "providers": {"deepseek": stand_in, "local": {"type": "openai_compatible", **stand_in}},
    }
    (settings.data_dir / "providers.yaml").write_text(yaml.safe_dump(providers))
    return settings


async def _run(client: httpx.AsyncClient, auth: dict[str, str], inputs: dict[str, Any], **extra: Any) -> httpx.Response:
    return await client.post("/v1/workflows/run", headers=auth, json={"inputs": inputs, "user": "u1", **extra})


CASES = [
    (F08, {}, {"num": 5}),
    (F09, {"switch1": 1, "switch2": 0}, {"group1": "switch 1 on", "group2": "switch 2 off"}),
    (F09, {"switch1": 0, "switch2": 1}, {"group1": "switch 1 off", "group2": "switch 2 on"}),
    (F10, {}, {"output": [[1, 2], [2, 4], [3, 6]]}),
]


@pytest.mark.parametrize(("path", "inputs", "outputs"), CASES, ids=["08", "09-on-off", "09-off-on", "10"])
async def test_real_exports_give_difys_outputs(
    client: httpx.AsyncClient, services: Services, path: Path, inputs: dict[str, Any], outputs: dict[str, Any]
) -> None:
    kit = import_app(services, path)
    r = await _run(client, kit.auth, inputs)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "succeeded", r.json()
    assert r.json()["data"]["outputs"] == outputs
    streamed = sse_events((await _run(client, kit.auth, inputs, response_mode="streaming")).text)
    assert streamed[-1]["event"] == "workflow_finished" and streamed[-1]["data"]["outputs"] == outputs


async def test_loop_and_iteration_events(client: httpx.AsyncClient, services: Services) -> None:
    loop = sse_events((await _run(client, import_app(services, F08).auth, {}, response_mode="streaming")).text)
    names = [e["event"] for e in loop]
    assert names.count("loop_started") == 1 and names.count("loop_completed") == 1 and names.count("loop_next") == 4
    nxt = next(e for e in loop if e["event"] == "loop_next")["data"]
    assert set(nxt) == {"id", "node_id", "node_type", "title", "index", "created_at", "pre_loop_output", "extras"}
    assert nxt["id"] == nxt["node_id"]  # Dify sends the node id here
    inner = [e["data"] for e in loop if e["event"] == "node_started" and e["data"]["loop_id"]]
    assert inner and all(d["loop_id"] == nxt["node_id"] for d in inner)
    it = sse_events((await _run(client, import_app(services, F10).auth, {}, response_mode="streaming")).text)
    names = [e["event"] for e in it]
    assert names.count("iteration_next") == 3
    frame = next(e for e in it if e["event"] == "iteration_next")
    assert list(frame) == ["event", "workflow_run_id", "task_id", "data"]
    assert list(frame["data"]) == ["id", "node_id", "node_type", "title", "index", "created_at", "extras"]
    assert frame["data"]["id"] == frame["data"]["node_id"] and frame["data"]["node_type"] == "iteration"
    assert frame["workflow_run_id"] == next(e for e in it if e["event"] == "workflow_started")["workflow_run_id"]
    done = next(e for e in it if e["event"] == "iteration_completed")["data"]
    assert done["outputs"] == {"output": [[1, 2], [2, 4], [3, 6]]} and done["status"] == "succeeded"
    assert set(done) >= {"steps", "total_tokens", "elapsed_time", "execution_metadata", "inputs", "finished_at"}


async def test_01_runs_against_the_model_server(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    kit = import_app(services, F01)
    fake_llm.reply("openify-is-fast")
    r = await _run(client, kit.auth, {"title": "Openify is a fast Dify server"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    assert data["outputs"] == {"output": "openify-is-fast"}
    assert data["total_tokens"] > 0
    sent = fake_llm.received[-1]
    assert sent["model"] == "deepseek-chat"
    assert sent["messages"][-1]["content"] == "Openify is a fast Dify server"
    fake_llm.reply("a-b-c")
    events = sse_events((await _run(client, kit.auth, {"title": "abc"}, response_mode="streaming")).text)
    assert "".join(e["data"]["text"] for e in events if e["event"] == "text_chunk") == "a-b-c"
    llm = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_type"] == "llm")
    assert llm["execution_metadata"]["total_tokens"] > 0
    assert_dify_error(await _run(client, kit.auth, {}), 400, "invalid_param")  # title is required


@pytest.mark.parametrize("path", [F08, F09, F10], ids=["08", "09", "10"])
async def test_export_imports_back_and_runs_the_same(client: httpx.AsyncClient, services: Services, path: Path) -> None:
    inputs = {"switch1": 1, "switch2": 1} if path == F09 else {}
    original = import_app(services, path)
    exported = services.apps.export(original.app_id)
    again = import_app(services, exported)
    a = (await _run(client, original.auth, inputs)).json()["data"]
    b = (await _run(client, again.auth, inputs)).json()["data"]
    assert b["status"] == a["status"] == "succeeded"
    assert b["outputs"] == a["outputs"]
    assert b["total_steps"] == a["total_steps"]


async def test_logs_filter_and_page(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    for name, user in [("Ayla", "alice"), ("Bob", "bob"), ("Cy", "alice"), ("Dee", "bob"), ("Émile", "carol")]:
        assert (
            await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": name}, "user": user})
        ).status_code == 200

    async def logs(**params: Any) -> dict[str, Any]:
        r = await client.get("/v1/workflows/logs", headers=kit.auth, params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    page = await logs(limit=2)
    assert (page["page"], page["limit"], page["total"], page["has_more"], len(page["data"])) == (1, 2, 5, True, 2)
    item = page["data"][0]
    assert set(item) == {
        "id",
        "workflow_run",
        "details",
        "created_from",
        "created_by_role",
        "created_by_account",
        "created_by_end_user",
        "created_at",
    }
    assert set(item["workflow_run"]) == {
        "id",
        "version",
        "status",
        "triggered_from",
        "error",
        "elapsed_time",
        "total_tokens",
        "total_steps",
        "created_at",
        "finished_at",
        "exceptions_count",
    }
    assert item["created_by_end_user"]["session_id"] == "carol"  # newest first
    assert item["created_by_role"] == "end_user" and item["created_by_account"] is None
    last = await logs(limit=2, page=3)
    assert (len(last["data"]), last["has_more"]) == (1, False)
    assert (await logs(created_by_end_user_session_id="alice"))["total"] == 2
    assert (await logs(keyword="Ayla"))["total"] == 1  # a name that no hex id in the stored inputs can contain
    assert (await logs(keyword="bob"))["total"] == 2  # Bob's inputs, and Dee run by end user bob
    assert (await logs(keyword="Émile"))["total"] == 1  # matched as Dify stores it, ASCII-escaped
    assert (await logs(keyword="nobody"))["total"] == 0
    assert (await logs(status="succeeded"))["total"] == 5
    assert (await logs(status="failed"))["total"] == 0
    run_id = item["workflow_run"]["id"]
    assert [d["id"] for d in (await logs(keyword=run_id))["data"]] == [run_id]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await logs(created_at__before=future))["total"] == 5
    assert (await logs(created_at__after=future))["total"] == 0
    assert (await logs(created_at__after=past, created_at__before=future))["total"] == 5
    failing = import_app(services, FAILING)
    await client.post("/v1/workflows/run", headers=failing.auth, json={"inputs": {}, "user": "u"})
    failed = (await client.get("/v1/workflows/logs", headers=failing.auth, params={"status": "failed"})).json()
    assert failed["total"] == 1 and "kaboom" in failed["data"][0]["workflow_run"]["error"]
    detail = (await client.get(f"/v1/workflows/run/{run_id}", headers=kit.auth)).json()
    assert json.loads(detail["inputs"])["name"] == "Émile" and isinstance(detail["inputs"], str)


OUTLINE = '```json\n[{"chapter": "1", "title": "Basics", "contents": ["What it is", "Why it matters"]}]\n```'
MODEL_EXPORTS = [
    ("02-", {"target_lang": "French", "source_text": "Good morning", "source_lang": "English"}, []),
    ("05-", {"course_name": "Openify"}, [OUTLINE]),
    ("07-", {"topic": "Workflow engines", "target_length": "300", "target_audience": "engineers"}, []),
]


@pytest.mark.parametrize(("prefix", "inputs", "replies"), MODEL_EXPORTS, ids=["02", "05", "07"])
async def test_real_exports_with_models_run_to_completion(
    client: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    prefix: str,
    inputs: dict[str, Any],
    replies: list[str],
) -> None:
    (path,) = DSL_DIR.glob(f"{prefix}*.yml")
    kit = import_app(services, path)
    fake_llm.reply(*replies)
    events = sse_events((await _run(client, kit.auth, inputs, response_mode="streaming")).text)
    fin = events[-1]
    assert fin["event"] == "workflow_finished" and fin["data"]["status"] == "succeeded", fin
    assert fin["data"]["outputs"] and fake_llm.received
    llm_nodes = [e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_type"] == "llm"]
    assert llm_nodes and all(n["status"] == "succeeded" for n in llm_nodes)
