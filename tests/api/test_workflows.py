"""POST /workflows/run and friends, through the API: Dify's events and bodies, errors, stop, disconnect, resume."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import select

from openify.services.container import Services
from openify.storage.tables import NodeExecution, WorkflowRun
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import (
    ECHO,
    FAILING,
    NODE_FINISHED_KEYS,
    NODE_STARTED_KEYS,
    code,
    dsl,
    end,
    sse_events,
    start,
)
from tests.conftest import import_app

FINISHED_KEYS = {
    "id",
    "workflow_id",
    "status",
    "outputs",
    "error",
    "elapsed_time",
    "total_tokens",
    "total_steps",
    "created_by",
    "created_at",
    "finished_at",
    "exceptions_count",
    "files",
}


async def test_blocking_run_returns_difys_body_and_is_stored(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    body = {"inputs": {"name": "Ada"}, "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"task_id", "workflow_run_id", "data"}
    data = got["data"]
    assert set(data) == {
        "id",
        "workflow_id",
        "status",
        "outputs",
        "error",
        "elapsed_time",
        "total_tokens",
        "total_steps",
        "created_at",
        "finished_at",
    }
    assert data["id"] == got["workflow_run_id"] != got["task_id"]
    assert (data["status"], data["outputs"], data["error"], data["total_steps"]) == (
        "succeeded",
        {"greeting": "Hello Ada!"},
        None,
        3,
    )
    with services.db.session() as s:
        run = s.get(WorkflowRun, data["id"])
        assert run is not None
        assert (run.status, json.loads(run.outputs or "{}"), run.total_steps) == ("succeeded", data["outputs"], 3)
        assert json.loads(run.inputs)["name"] == "Ada"
        nodes = s.scalars(
            select(NodeExecution).where(NodeExecution.run_id == run.id).order_by(NodeExecution.index)
        ).all()
    assert [(n.node_id, n.status) for n in nodes] == [
        ("start", "succeeded"),
        ("greet", "succeeded"),
        ("end", "succeeded"),
    ]
    assert nodes[1].inputs == {"name": "Ada"}
    assert nodes[1].outputs == {"output": "Hello Ada!"}
    assert all(n.finished_at is not None and n.elapsed_time >= 0 for n in nodes)


async def test_streaming_run_sends_difys_events_in_order(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    body = {"inputs": {"name": "Ada"}, "user": "u1", "response_mode": "streaming"}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json=body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("event: ping\n\n")
    assert '"event":"workflow_started"' in r.text  # compact JSON, as Dify's orjson
    events = sse_events(r.text)
    names = [e["event"] for e in events]
    # The End node's text streams as soon as the template's output exists (before or after End starts).
    assert [n for n in names if n != "text_chunk"] == [
        "ping",
        "workflow_started",
        "node_started",
        "node_finished",
        "node_started",
        "node_finished",
        "node_started",
        "node_finished",
        "workflow_finished",
    ]
    assert names.index("text_chunk") > 5
    chunk = events[names.index("text_chunk")]
    run_id, task_id = events[1]["workflow_run_id"], events[1]["task_id"]
    for e in events[1:]:
        assert (e["workflow_run_id"], e["task_id"]) == (run_id, task_id)
    started = events[1]["data"]
    assert started["id"] == run_id and started["inputs"]["name"] == "Ada" and started["reason"] == "initial"
    assert tuple(events[2]["data"]) == NODE_STARTED_KEYS and events[2]["data"]["inputs"] is None
    assert tuple(events[3]["data"]) == NODE_FINISHED_KEYS
    assert events[5]["data"]["outputs"] == {"output": "Hello Ada!"}
    assert chunk["data"] == {"text": "Hello Ada!", "from_variable_selector": ["greet", "output"]}
    fin = events[-1]["data"]
    assert set(fin) == FINISHED_KEYS
    assert (fin["status"], fin["outputs"], fin["workflow_id"]) == (
        "succeeded",
        {"greeting": "Hello Ada!"},
        started["workflow_id"],
    )
    assert fin["created_by"]["user"] == "u1"
    detail = (await client.get(f"/v1/workflows/run/{run_id}", headers=kit.auth)).json()
    assert detail["status"] == "succeeded" and detail["outputs"] == {"greeting": "Hello Ada!"}


async def test_failed_node_ends_the_run_failed(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, FAILING)
    r = await client.post(
        "/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1", "response_mode": "streaming"}
    )
    events = sse_events(r.text)
    assert [e["event"] for e in events][-2:] == ["node_finished", "workflow_finished"]
    node, fin = events[-2]["data"], events[-1]["data"]
    assert node["node_id"] == "boom" and node["status"] == "failed" and "kaboom" in node["error"]
    assert fin["status"] == "failed" and "kaboom" in fin["error"]
    assert "error" not in [e["event"] for e in events]
    blocking = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1"})
    assert blocking.status_code == 200  # a failed run is still a 200, with status and error set
    assert blocking.json()["data"]["status"] == "failed" and "kaboom" in blocking.json()["data"]["error"]
    stored = (await client.get(f"/v1/workflows/run/{fin['id']}", headers=kit.auth)).json()
    assert stored["status"] == "failed" and "kaboom" in stored["error"]
    with services.db.session() as s:
        row = s.scalars(
            select(NodeExecution).where(NodeExecution.run_id == fin["id"], NodeExecution.node_id == "boom")
        ).one()
        assert row.status == "failed" and "kaboom" in (row.error or "")


async def test_bad_inputs_are_refused_before_the_run(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1"})
    body = assert_dify_error(r, 400, "invalid_param")
    assert body["message"] == "name is required in input form"
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": 5}, "user": "u1"})
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "x" * 49}, "user": "u1"})
    assert_dify_error(r, 400, "invalid_param")
    # Streaming: Dify's in-band frame after the ping, and nothing stored.
    r = await client.post(
        "/v1/workflows/run", headers=kit.auth, json={"inputs": {}, "user": "u1", "response_mode": "streaming"}
    )
    assert r.status_code == 200
    assert sse_events(r.text) == [
        {"event": "ping"},
        {"event": "error", "message": "name is required in input form", "status": 500},
    ]
    with services.db.session() as s:
        assert s.scalars(select(WorkflowRun)).all() == []


async def test_request_errors(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    assert_dify_error(
        await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "a"}}), 400, "invalid_param"
    )
    assert_dify_error(
        await client.post("/v1/workflows/run", headers=kit.auth, json={"user": "u"}), 400, "invalid_param"
    )
    r = await client.post(
        "/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "a"}, "user": "u", "response_mode": "x"}
    )
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post(
        "/v1/workflows/run",
        headers=kit.auth,
        content=b"{nope",
    )
    assert r.status_code == 400
    chat = import_app(services, (__import__("tests.conftest").conftest.DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml"))
    r = await client.post("/v1/workflows/run", headers=chat.auth, json={"inputs": {}, "user": "u"})
    assert_dify_error(r, 400, "not_workflow_app")
    assert_dify_error(await client.get("/v1/workflows/run/abc", headers=kit.auth), 404, "not_found")
    assert_dify_error(await client.get("/v1/workflows/run/abc", headers=chat.auth), 400, "not_workflow_app")
    assert_dify_error(
        await client.get("/v1/workflows/logs", headers=kit.auth, params={"limit": 0}), 400, "invalid_param"
    )
    assert_dify_error(
        await client.get("/v1/workflows/logs", headers=kit.auth, params={"status": "x"}), 400, "invalid_param"
    )


async def test_numeric_user_is_taken_as_text(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "A"}, "user": 42})
    assert r.status_code == 200, r.text
    logs = (await client.get("/v1/workflows/logs", headers=kit.auth)).json()
    assert logs["data"][0]["created_by_end_user"]["session_id"] == "42"


async def test_run_by_workflow_id(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)
    first = (
        await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": "A"}, "user": "u"})
    ).json()
    workflow_id = first["data"]["workflow_id"]
    r = await client.post(
        f"/v1/workflows/{workflow_id}/run", headers=kit.auth, json={"inputs": {"name": "B"}, "user": "u"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["workflow_id"] == workflow_id
    assert r.json()["data"]["outputs"] == {"greeting": "Hello B!"}
    assert_dify_error(
        await client.post("/v1/workflows/draft/run", headers=kit.auth, json={"inputs": {"name": "B"}, "user": "u"}),
        400,
        "bad_request",
    )
    assert_dify_error(
        await client.post("/v1/workflows/not-an-id/run", headers=kit.auth, json={"inputs": {"name": "B"}, "user": "u"}),
        400,
        "bad_request",
    )
    r = await client.post(
        "/v1/workflows/00000000-0000-0000-0000-000000000000/run",
        headers=kit.auth,
        json={"inputs": {"name": "B"}, "user": "u"},
    )
    assert (
        assert_dify_error(r, 404, "not_found")["message"]
        == "Workflow not found with id: 00000000-0000-0000-0000-000000000000"
    )
    other = import_app(services, ECHO)  # another app's version is not this app's
    r = await client.post(
        f"/v1/workflows/{workflow_id}/run", headers=other.auth, json={"inputs": {"name": "B"}, "user": "u"}
    )
    assert_dify_error(r, 404, "not_found")


async def test_concurrent_runs_are_independent(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, ECHO)

    async def one(i: int) -> str:
        r = await client.post(
            "/v1/workflows/run", headers=kit.auth, json={"inputs": {"name": f"n{i}"}, "user": f"u{i}"}
        )
        return str(r.json()["data"]["outputs"]["greeting"])

    got = await asyncio.gather(*(one(i) for i in range(12)))
    assert got == [f"Hello n{i}!" for i in range(12)]


RETRYING = dsl(
    [
        start(),
        {
            **code("flaky", "def main() -> dict:\n    raise ValueError('always')\n", {}, {"x": "string"}),
            "retry_config": {"retry_enabled": True, "max_retries": 2, "retry_interval": 10},
        },
        end(x=["flaky", "x"]),
    ],
    [("start", "flaky"), ("flaky", "end")],
)

DEFAULTING = dsl(
    [
        start(),
        {
            **code("risky", "def main() -> dict:\n    raise ValueError('nope')\n", {}, {"x": "string"}),
            "error_strategy": "default-value",
            "default_value": [{"key": "x", "type": "string", "value": "fallback"}],
        },
        end(x=["risky", "x"]),
    ],
    [("start", "risky"), ("risky", "end")],
)


async def test_retries_are_streamed_and_stored(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, RETRYING)
    body = {"inputs": {}, "user": "u1", "response_mode": "streaming"}
    events = sse_events((await client.post("/v1/workflows/run", headers=kit.auth, json=body)).text)
    retries = [e["data"] for e in events if e["event"] == "node_retry"]
    assert [(r["retry_index"], r["status"], r["node_id"]) for r in retries] == [
        (0, "retry", "flaky"),
        (1, "retry", "flaky"),
    ]
    assert events[-1]["data"]["status"] == "failed"
    with services.db.session() as s:
        rows = s.scalars(select(NodeExecution).where(NodeExecution.node_id == "flaky")).all()
    assert sorted(r.status for r in rows) == ["failed", "retry", "retry"]


async def test_default_value_strategy_gives_partial_success(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, DEFAULTING)
    body = {"inputs": {}, "user": "u1", "response_mode": "streaming"}
    events = sse_events((await client.post("/v1/workflows/run", headers=kit.auth, json=body)).text)
    node = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "risky")
    assert node["status"] == "exception" and "nope" in node["error"]
    assert node["execution_metadata"]["error_strategy"] == "default-value"
    fin = events[-1]["data"]
    assert (fin["status"], fin["outputs"], fin["exceptions_count"]) == ("partial-succeeded", {"x": "fallback"}, 1)
    stored = (await client.get(f"/v1/workflows/run/{fin['id']}", headers=kit.auth)).json()
    assert stored["status"] == "partial-succeeded" and stored["outputs"] == {"x": "fallback"}


EXTRACT = dsl(
    [
        start({"variable": "doc", "label": "doc", "type": "file", "required": True}),
        {"id": "extract", "type": "document-extractor", "variable_selector": ["start", "doc"], "is_array_file": False},
        end(text=["extract", "text"], count=["sys", "files"]),
    ],
    [("start", "extract"), ("extract", "end")],
)


async def test_file_inputs_are_uploads_read_by_nodes(client: httpx.AsyncClient, services: Services) -> None:
    kit = import_app(services, EXTRACT)
    up = await client.post(
        "/v1/files/upload", headers=kit.auth, data={"user": "u1"}, files={"file": ("notes.txt", b"hello from a file")}
    )
    assert up.status_code == 201, up.text
    ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": up.json()["id"]}
    body = {"inputs": {"doc": ref}, "user": "u1", "files": [ref]}
    r = await client.post("/v1/workflows/run", headers=kit.auth, json=body)
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    assert data["outputs"]["text"] == "hello from a file"
    (sys_file,) = data["outputs"]["count"]
    assert (sys_file["filename"], sys_file["dify_model_identity"]) == ("notes.txt", "__dify__file__")
    # Another end user's upload is refused before the run.
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={**body, "user": "u2"})
    assert_dify_error(r, 400, "invalid_param")
