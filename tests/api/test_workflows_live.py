"""Workflow runs over real HTTP against `openify serve`: stop, client disconnect, resume, a killed server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import redis

from openify.services.stops import CHANNEL
from tests.api.dify import assert_dify_error
from tests.api.workflow_kit import NODE_FINISHED_KEYS, SLOW, EventReader, code, dsl, sse_events, start
from tests.conftest import LiveServer, start_server, stop_server


def _import(server: LiveServer, tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "app.yml"
    path.write_text(text, encoding="utf-8")
    r = server.cli("app", "import", str(path))
    assert r.returncode == 0, r.stderr
    return {"Authorization": f"Bearer {json.loads(r.stdout)['api_key']}"}


@asynccontextmanager
async def napping(client: httpx.AsyncClient, auth: dict[str, str]) -> AsyncIterator[tuple[EventReader, dict[str, Any]]]:
    """A streamed run of u1's whose code node naps now: its reader, and the nap's node_started frame."""
    body = {"inputs": {}, "user": "u1", "response_mode": "streaming"}
    async with client.stream("POST", "/v1/workflows/run", headers=auth, json=body) as r:
        reader = EventReader(r)
        await reader.until("node_started")
        started = await reader.until("node_started")
        yield reader, started[-1]


async def test_stop_ends_a_live_run_as_stopped(live_server: LiveServer, tmp_path: Path) -> None:
    other_app = _import(live_server, tmp_path, SLOW)
    auth = _import(live_server, tmp_path, SLOW)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        async with napping(client, auth) as (reader, nap):  # the 2 s code node is running now
            task_id, path = nap["task_id"], f"/v1/workflows/tasks/{nap['task_id']}/stop"
            # Another end user, or another app's key, cannot stop it: answered success and ignored, as
            # Dify's AppQueueManager.set_stop_flag ignores a task that is not the caller's.
            for headers, user in ((auth, "someone-else"), (other_app, "u1")):
                foreign = await client.post(path, headers=headers, json={"user": user})
                assert foreign.json() == {"result": "success"}
            await asyncio.sleep(0.3)
            running = await client.get(f"/v1/workflows/run/{nap['workflow_run_id']}", headers=auth)
            assert running.json()["status"] == "running"
            stop = await client.post(path, headers=auth, json={"user": "u1"})
            assert stop.json() == {"result": "success"}
            rest = await reader.until()
        fin = rest[-1]
        assert fin["event"] == "workflow_finished"
        assert fin["data"]["status"] == "stopped" and fin["data"]["error"] == "Stopped by user."
        assert fin["data"]["elapsed_time"] < 1.8  # the 2 s node was cut short
        stored = (await client.get(f"/v1/workflows/run/{fin['workflow_run_id']}", headers=auth)).json()
        assert stored["status"] == "stopped"
        unknown = await client.post("/v1/workflows/tasks/nope/stop", headers=auth, json={"user": "u1"})
        assert unknown.json() == {"result": "success"}
        missing_user = await client.post(f"/v1/workflows/tasks/{task_id}/stop", headers=auth, json={})
        assert_dify_error(missing_user, 400, "invalid_param")


async def test_a_stop_reaches_a_run_in_another_server_process(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """Two servers on one database and one Redis: the stop lands on the one that does not run the task."""
    env = {"OPENIFY_REDIS_URL": redis_url}
    runner = start_server(tmp_path / "runner", database_url, env)
    try:
        auth = _import(runner, tmp_path, SLOW)
        other = start_server(tmp_path / "other", database_url, env)
        try:
            with redis.Redis.from_url(redis_url) as r:  # garbage on the channel is ignored, and listening goes on
                assert r.publish(CHANNEL, b"not a stop") >= 2
            async with (
                httpx.AsyncClient(base_url=runner.base_url, timeout=30) as client,
                httpx.AsyncClient(base_url=other.base_url, timeout=30) as elsewhere,
            ):
                async with napping(client, auth) as (reader, nap):  # the 2 s code node is running now
                    task_id = nap["task_id"]
                    stop = await elsewhere.post(
                        f"/v1/workflows/tasks/{task_id}/stop", headers=auth, json={"user": "u1"}
                    )
                    assert stop.json() == {"result": "success"}
                    rest = await reader.until()
                fin = rest[-1]
                assert fin["event"] == "workflow_finished"
                assert fin["data"]["status"] == "stopped" and fin["data"]["elapsed_time"] < 1.8
                stored = (await elsewhere.get(f"/v1/workflows/run/{fin['workflow_run_id']}", headers=auth)).json()
                assert stored["status"] == "stopped"
        finally:
            stop_server(other)
    finally:
        stop_server(runner)


async def test_a_server_whose_redis_is_down_starts_and_stops_its_own_runs(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path / "s", database_url, {"OPENIFY_REDIS_URL": "redis://127.0.0.1:1/0"})
    try:
        auth = _import(server, tmp_path, SLOW)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            async with napping(client, auth) as (reader, nap):
                path = f"/v1/workflows/tasks/{nap['task_id']}/stop"
                stop = await client.post(path, headers=auth, json={"user": "u1"})
                assert stop.json() == {"result": "success"}
                rest = await reader.until()
        assert rest[-1]["data"]["status"] == "stopped"
    finally:
        stop_server(server)


async def test_disconnect_does_not_stop_the_run_and_events_resume(live_server: LiveServer, tmp_path: Path) -> None:
    auth = _import(live_server, tmp_path, SLOW)
    body = {"inputs": {}, "user": "u1", "response_mode": "streaming"}
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        async with client.stream("POST", "/v1/workflows/run", headers=auth, json=body) as r:
            first = await EventReader(r).until("workflow_started")
        run_id = first[-1]["workflow_run_id"]
        # The client hung up while the 2 s node runs; the run goes on. Resuming with the snapshot replays it.
        params = {"user": "u1", "include_state_snapshot": "true"}
        async with client.stream("GET", f"/v1/workflow/{run_id}/events", headers=auth, params=params) as r:
            resumed = await EventReader(r).until()
        names = [e["event"] for e in resumed]
        assert names[:3] == ["ping", "workflow_started", "node_started"]
        assert names[-1] == "workflow_finished" and resumed[-1]["data"]["outputs"] == {"done": "yes"}
        # Finished: one workflow_finished frame whose task_id is the run id.
        r = await client.get(f"/v1/workflow/{run_id}/events", headers=auth, params={"user": "u1"})
        (only,) = sse_events(r.text)
        assert only["event"] == "workflow_finished" and only["task_id"] == run_id == only["workflow_run_id"]
        assert only["data"]["status"] == "succeeded" and only["data"]["outputs"] == {"done": "yes"}
        other = await client.get(f"/v1/workflow/{run_id}/events", headers=auth, params={"user": "u2"})
        assert_dify_error(other, 404, "not_found")
        assert_dify_error(await client.get(f"/v1/workflow/{run_id}/events", headers=auth), 400, "invalid_param")


async def test_run_killed_with_the_server_is_failed_on_restart(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path / "live", database_url)
    try:
        auth = _import(server, tmp_path, SLOW)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            async with napping(client, auth) as (_, nap):
                run_id = nap["workflow_run_id"]
                os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
    finally:
        stop_server(server)
    server = start_server(tmp_path / "live", database_url)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            detail = (await client.get(f"/v1/workflows/run/{run_id}", headers=auth)).json()
            assert detail["status"] == "failed"
            assert detail["error"] == "The server stopped before the run finished."
            assert detail["finished_at"] is not None
            logs = (await client.get("/v1/workflows/logs", headers=auth, params={"status": "failed"})).json()
            assert [d["id"] for d in logs["data"]] == [run_id]
    finally:
        stop_server(server)


async def test_a_second_server_leaves_the_first_ones_runs_alone_and_fails_them_when_it_dies(
    tmp_path: Path, database_url: str
) -> None:
    """Two processes on one database: one starting does not fail the other's live run; one killed has its live
    run failed by the other, without a restart."""
    # The nap outlasts a server's start, under the load of a parallel test run too (past the sandbox's 15 s).
    first = start_server(tmp_path / "first", database_url, {"OPENIFY_SANDBOX__WALL_TIME_S": "60"})
    second: LiveServer | None = None
    try:
        auth = _import(first, tmp_path, SLOW.replace("time.sleep(2)", "time.sleep(20)"))
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as client:
            async with napping(client, auth) as (reader, nap):  # the 20 s code node is running now
                second = start_server(tmp_path / "second", database_url, {"OPENIFY_INSTANCE_LEASE_S": "1.5"})
                run_id = nap["workflow_run_id"]
                async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as other:
                    path = f"/v1/workflows/run/{run_id}"
                    assert (await other.get(path, headers=auth)).json()["status"] == "running"
                    # Resumed through the process that does not run it: the run's stored rows, as they come.
                    events = f"/v1/workflow/{run_id}/events"
                    snapshot = {"user": "u1", "include_state_snapshot": "true"}
                    resumed, from_now, rest = await asyncio.gather(
                        other.get(events, headers=auth, params=snapshot),
                        other.get(events, headers=auth, params={"user": "u1"}),
                        reader.until(),
                    )
                live = [e for e in reader.seen if e["event"] not in ("ping", "text_chunk")]
                stored = [e for e in sse_events(resumed.text) if e["event"] != "ping"]
                assert [(e["event"], e["data"].get("node_id")) for e in stored] == [
                    (e["event"], e["data"].get("node_id")) for e in live
                ]
                for got, sent in zip(stored, live, strict=True):
                    assert list(got) == list(sent) and list(got["data"]) == list(sent["data"])
                    assert got["task_id"] == sent["task_id"] and got["data"]["id"] == sent["data"]["id"]
                    if got["event"] == "node_finished":
                        assert tuple(got["data"]) == NODE_FINISHED_KEYS
                        assert (got["data"]["status"], got["data"]["outputs"]) == (
                            sent["data"]["status"],
                            sent["data"]["outputs"],
                        )
                assert stored[-1]["data"]["status"] == "succeeded" and stored[-1]["data"]["outputs"] == {"done": "yes"}
                # Without the snapshot, what happens from now on: the nap's end, the end node, the run's end.
                later = [
                    (e["event"], e["data"].get("node_id")) for e in sse_events(from_now.text) if e["event"] != "ping"
                ]
                assert later == [
                    ("node_finished", "nap"),
                    ("node_started", "end"),
                    ("node_finished", "end"),
                    ("workflow_finished", None),
                ]
            fin = rest[-1]
            assert fin["event"] == "workflow_finished" and fin["data"]["status"] == "succeeded"
            async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as other:
                stored = (await other.get(f"/v1/workflows/run/{fin['workflow_run_id']}", headers=auth)).json()
                assert stored["status"] == "succeeded" and stored["error"] is None
                # Now the first dies mid-run; the second fails that run at its next beat.
                async with napping(client, auth) as (_, nap):
                    run_id = nap["workflow_run_id"]
                    os.kill(first.process.pid, signal.SIGKILL)
                first.process.wait()
                detail = (await other.get(f"/v1/workflows/run/{run_id}", headers=auth)).json()
                assert detail["status"] == "running"  # stored as the first left it
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    detail = (await other.get(f"/v1/workflows/run/{run_id}", headers=auth)).json()
                    if detail["status"] != "running":
                        break
                assert detail["status"] == "failed" and detail["error"] == "The server stopped before the run finished."
    finally:
        stop_server(first)
        if second is not None:
            stop_server(second)


SLOW_CHAT = dsl(
    [
        start(),
        code(
            "nap",
            "import time\ndef main() -> dict:\n    time.sleep(2)\n    return {'done': 'yes'}\n",
            {},
            {"done": "string"},
        ),
        {"id": "answer", "type": "answer", "answer": "before {{#nap.done#}}"},
    ],
    [("start", "nap"), ("nap", "answer")],
    mode="advanced-chat",
)


async def test_chatflow_stop_ends_with_workflow_finished_then_message_end(
    live_server: LiveServer, tmp_path: Path
) -> None:
    auth = _import(live_server, tmp_path, SLOW_CHAT)
    body = {"inputs": {}, "query": "hi", "user": "u1", "response_mode": "streaming"}
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        async with client.stream("POST", "/v1/chat-messages", headers=auth, json=body) as r:
            reader = EventReader(r)
            await reader.until("node_started")
            started = await reader.until("node_started")  # the 2 s code node is running now
            task_id, conv = started[-1]["task_id"], started[-1]["conversation_id"]
            other = await client.post(f"/v1/chat-messages/{task_id}/stop", headers=auth, json={"user": "u2"})
            assert other.json() == {"result": "success"}  # another user's stop is a silent no-op
            stop = await client.post(f"/v1/chat-messages/{task_id}/stop", headers=auth, json={"user": "u1"})
            assert stop.json() == {"result": "success"}
            rest = await reader.until()
        assert [e["event"] for e in rest][-2:] == ["workflow_finished", "message_end"]
        assert rest[-2]["data"]["status"] == "stopped" and rest[-2]["data"]["error"] == "Stopped by user."
        msgs = (await client.get("/v1/messages", headers=auth, params={"user": "u1", "conversation_id": conv})).json()
        assert [m["query"] for m in msgs["data"]] == ["hi"]


async def test_chatflow_resume_ends_with_message_end_and_workflow_finished(
    live_server: LiveServer, tmp_path: Path
) -> None:
    auth = _import(live_server, tmp_path, SLOW_CHAT)
    body = {"inputs": {}, "query": "hi", "user": "u1", "response_mode": "streaming"}
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        async with client.stream("POST", "/v1/chat-messages", headers=auth, json=body) as r:
            first = await EventReader(r).until("workflow_started")
        run_id = first[-1]["workflow_run_id"]
        params = {"user": "u1", "include_state_snapshot": "true"}
        async with client.stream("GET", f"/v1/workflow/{run_id}/events", headers=auth, params=params) as r:
            resumed = await EventReader(r).until()
        names = [e["event"] for e in resumed]
        assert names[:2] == ["ping", "workflow_started"]
        assert names[-2:] == ["message_end", "workflow_finished"]
        assert "".join(e["answer"] for e in resumed if e["event"] == "message") == "before yes"


def _frames(text: str) -> list[dict[str, Any]]:
    return [e for e in sse_events(text) if e["event"] != "ping"]


@asynccontextmanager
async def two_servers(
    tmp_path: Path, database_url: str, first_env: dict[str, str], second_env: dict[str, str]
) -> AsyncIterator[tuple[LiveServer, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two `openify serve` processes on one database: the first (which the tests' runs start on), and a client
    of each."""
    first = start_server(tmp_path / "first", database_url, first_env)
    second: LiveServer | None = None
    try:
        second = start_server(tmp_path / "second", database_url, second_env)
        async with (
            httpx.AsyncClient(base_url=first.base_url, timeout=30) as client,
            httpx.AsyncClient(base_url=second.base_url, timeout=30) as other,
        ):
            yield first, client, other
    finally:
        stop_server(first)
        if second is not None:
            stop_server(second)


async def test_a_run_resumed_through_another_process_is_relayed_over_redis(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """With Redis, a stream resumed through the process that does not run the run is the live stream itself:
    every frame, text chunks included; and a chatflow's message events and end, in Dify's order."""
    env = {"OPENIFY_REDIS_URL": redis_url}
    async with two_servers(tmp_path, database_url, env, env) as (first, client, other):
        auth = _import(first, tmp_path, SLOW)
        async with napping(client, auth) as (reader, nap):
            events = f"/v1/workflow/{nap['workflow_run_id']}/events"
            snapshot = {"user": "u1", "include_state_snapshot": "true"}
            resumed, from_now, _ = await asyncio.gather(
                other.get(events, headers=auth, params=snapshot),
                other.get(events, headers=auth, params={"user": "u1"}),
                reader.until(),
            )
        live = [e for e in reader.seen if e["event"] != "ping"]
        assert "text_chunk" in [e["event"] for e in live]
        assert _frames(resumed.text) == live
        # Without the snapshot, what came after the nap had started, the same frames.
        after_nap = next(
            i for i, e in enumerate(live) if e["event"] == "node_started" and e["data"]["node_id"] == "nap"
        )
        assert _frames(from_now.text) == live[after_nap + 1 :]
        assert [e["event"] for e in live[after_nap + 1 :]][-1] == "workflow_finished"

        chat_auth = _import(first, tmp_path, SLOW_CHAT)
        body = {"inputs": {}, "query": "hi", "user": "u1", "response_mode": "streaming"}
        async with client.stream("POST", "/v1/chat-messages", headers=chat_auth, json=body) as r:
            chat_reader = EventReader(r)
            first_frames = await chat_reader.until("workflow_started")
            events = f"/v1/workflow/{first_frames[-1]['workflow_run_id']}/events"
            resumed_chat, _ = await asyncio.gather(
                other.get(events, headers=chat_auth, params=snapshot), chat_reader.until()
            )
        live_chat = [e for e in chat_reader.seen if e["event"] != "ping"]
        got = _frames(resumed_chat.text)
        assert [e["event"] for e in got][-2:] == ["message_end", "workflow_finished"]
        assert "".join(e["answer"] for e in got if e["event"] == "message") == "before yes"
        assert got == live_chat


async def test_a_followed_run_whose_process_dies_ends_failed(tmp_path: Path, database_url: str, redis_url: str) -> None:
    env = {"OPENIFY_REDIS_URL": redis_url}
    async with two_servers(tmp_path, database_url, env, {**env, "OPENIFY_INSTANCE_LEASE_S": "1.5"}) as (
        first,
        client,
        other,
    ):
        auth = _import(first, tmp_path, SLOW.replace("time.sleep(2)", "time.sleep(30)"))
        async with napping(client, auth) as (_, nap):
            params = {"user": "u1", "include_state_snapshot": "true"}
            path = f"/v1/workflow/{nap['workflow_run_id']}/events"
            async with other.stream("GET", path, headers=auth, params=params) as r:
                follower = EventReader(r)
                await follower.until("node_started")
                await follower.until("node_started")  # relayed: the nap has started
                os.kill(first.process.pid, signal.SIGKILL)
                first.process.wait()  # reaped: a zombie's pid would still look alive until its lease ends
                rest = await follower.until()
    fin = rest[-1]
    assert fin["event"] == "workflow_finished" and fin["data"]["status"] == "failed"
    assert fin["data"]["error"] == "The server stopped before the run finished."


async def test_a_run_nobody_relays_is_followed_through_its_rows(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """The process running the run does not listen on Redis: the follower's ask goes unanswered, and the resumed
    stream falls back to the stored rows (node events and the end, no text chunks)."""
    async with two_servers(tmp_path, database_url, {}, {"OPENIFY_REDIS_URL": redis_url}) as (first, client, other):
        auth = _import(first, tmp_path, SLOW)
        async with napping(client, auth) as (reader, nap):
            params = {"user": "u1", "include_state_snapshot": "true"}
            path = f"/v1/workflow/{nap['workflow_run_id']}/events"
            resumed, _ = await asyncio.gather(other.get(path, headers=auth, params=params), reader.until())
    got = _frames(resumed.text)
    live = [e for e in reader.seen if e["event"] not in ("ping", "text_chunk")]
    assert [(e["event"], e["data"].get("node_id")) for e in got] == [
        (e["event"], e["data"].get("node_id")) for e in live
    ]
    assert got[-1]["data"]["status"] == "succeeded"
