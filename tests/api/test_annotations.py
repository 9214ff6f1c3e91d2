"""/apps/annotations and /apps/annotation-reply, and annotation reply answering chat queries without the model."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from openify.services.container import Services
from tests.api import chatkit
from tests.api.chatkit import blocking, streaming
from tests.api.dify import assert_dify_error
from tests.conftest import DSL_DIR, AppKit, import_app
from tests.fake_llm.server import FakeLLM

settings, chat = chatkit.settings, chatkit.chat  # fixtures

EMBEDDED = {"embedding_provider_name": "openify", "embedding_model_name": "usem3"}


async def _create(client: httpx.AsyncClient, kit: AppKit, question: str, answer: str) -> dict[str, Any]:
    r = await client.post("/v1/apps/annotations", headers=kit.auth, json={"question": question, "answer": answer})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _configure(client: httpx.AsyncClient, kit: AppKit, action: str, **body: Any) -> dict[str, str]:
    """Run an annotation-reply job to its end; its last status."""
    payload = {**EMBEDDED, "score_threshold": 0.8, **body}
    r = await client.post(f"/v1/apps/annotation-reply/{action}", headers=kit.auth, json=payload)
    assert r.status_code == 200, r.text
    job = r.json()
    assert set(job) == {"job_id", "job_status"} and job["job_status"] in ("waiting", "processing")
    for _ in range(600):
        got = await client.get(f"/v1/apps/annotation-reply/{action}/status/{job['job_id']}", headers=kit.auth)
        assert got.status_code == 200, got.text
        status = dict(got.json())
        if status["job_status"] in ("completed", "error"):
            assert status["job_id"] == job["job_id"]
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"annotation reply job {job} did not end")


async def test_annotations_are_created_listed_searched_updated_and_deleted(
    client: httpx.AsyncClient, chat: AppKit
) -> None:
    first = await _create(client, chat, "How do I reset my password?", "Use the link on the sign-in page.")
    assert set(first) == {"id", "question", "answer", "hit_count", "created_at"}
    assert first["hit_count"] == 0 and isinstance(first["created_at"], int)
    await _create(client, chat, "如何申请年假？", "在人事系统里提交申请。")
    await _create(client, chat, "Opening hours?", "9 to 5, Monday to Friday.")

    listed = (await client.get("/v1/apps/annotations", headers=chat.auth)).json()
    assert listed["total"] == 3 and listed["page"] == 1 and listed["limit"] == 20 and listed["has_more"] is False
    assert [a["question"] for a in listed["data"]][-1] == "How do I reset my password?"  # newest first

    page = (await client.get("/v1/apps/annotations", headers=chat.auth, params={"limit": 2})).json()
    assert len(page["data"]) == 2 and page["has_more"] is True and page["total"] == 3
    capped = (await client.get("/v1/apps/annotations", headers=chat.auth, params={"limit": 500})).json()
    assert capped["limit"] == 100

    # keyword: either side, case-insensitive, Chinese too; LIKE wildcards are literal
    found = (await client.get("/v1/apps/annotations", headers=chat.auth, params={"keyword": "PASSWORD"})).json()
    assert [a["id"] for a in found["data"]] == [first["id"]] and found["total"] == 1
    zh = (await client.get("/v1/apps/annotations", headers=chat.auth, params={"keyword": "人事"})).json()
    assert [a["question"] for a in zh["data"]] == ["如何申请年假？"]
    none = (await client.get("/v1/apps/annotations", headers=chat.auth, params={"keyword": "%"})).json()
    assert none["data"] == [] and none["total"] == 0

    body = {"question": "How can I reset my password?", "answer": "Ask IT."}
    r = await client.put(f"/v1/apps/annotations/{first['id']}", headers=chat.auth, json=body)
    assert r.status_code == 200 and r.json()["answer"] == "Ask IT." and r.json()["id"] == first["id"]

    r = await client.delete(f"/v1/apps/annotations/{first['id']}", headers=chat.auth)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get("/v1/apps/annotations", headers=chat.auth)).json()["total"] == 2
    assert_dify_error(await client.delete(f"/v1/apps/annotations/{first['id']}", headers=chat.auth), 404, "not_found")
    assert_dify_error(
        await client.put(f"/v1/apps/annotations/{first['id']}", headers=chat.auth, json=body), 404, "not_found"
    )


async def test_an_app_reaches_only_its_own_annotations(
    client: httpx.AsyncClient, chat: AppKit, services: Services
) -> None:
    mine = await _create(client, chat, "q", "a")
    other = import_app(services, chatkit.chat_dsl())
    assert (await client.get("/v1/apps/annotations", headers=other.auth)).json()["total"] == 0
    body = {"question": "x", "answer": "y"}
    r = await client.put(f"/v1/apps/annotations/{mine['id']}", headers=other.auth, json=body)
    assert_dify_error(r, 404, "not_found")
    assert_dify_error(await client.delete(f"/v1/apps/annotations/{mine['id']}", headers=other.auth), 404, "not_found")
    got = (await client.get("/v1/apps/annotations", headers=chat.auth)).json()["data"]
    assert [(a["question"], a["answer"]) for a in got] == [("q", "a")]


async def test_bad_requests_are_dify_errors(client: httpx.AsyncClient, chat: AppKit) -> None:
    r = await client.post("/v1/apps/annotations", headers=chat.auth, json={"question": "only a question"})
    assert_dify_error(r, 400, "invalid_param")
    assert (await client.get("/v1/apps/annotations", headers=chat.auth)).json()["total"] == 0
    r = await client.post("/v1/apps/annotation-reply/enable", headers=chat.auth, json={"score_threshold": 0.9})
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post(
        "/v1/apps/annotation-reply/toggle", headers=chat.auth, json={**EMBEDDED, "score_threshold": 0.9}
    )
    assert_dify_error(r, 400, "invalid_param")
    unknown = "3f1c8a52-6f7e-4c1b-9a3d-0d6b1f2e4a5c"
    r = await client.get(f"/v1/apps/annotation-reply/enable/status/{unknown}", headers=chat.auth)
    assert_dify_error(r, 400, "invalid_param")
    assert r.json()["message"] == "The job does not exist."
    assert_dify_error(
        await client.get("/v1/apps/annotations", headers={"Authorization": "Bearer app-x"}), 401, "unauthorized"
    )
    text = {**chat.auth, "content-type": "text/plain"}
    assert_dify_error(
        await client.post("/v1/apps/annotations", headers=text, content=b"q"), 415, "unsupported_media_type"
    )


async def test_nul_characters_are_stripped(client: httpx.AsyncClient, chat: AppKit) -> None:
    """PostgreSQL text cannot hold NUL: Dify strips it from inputs, and so do we, in bodies and the keyword."""
    made = await _create(client, chat, "reset\x00 password", "use\x00 the link")
    assert (made["question"], made["answer"]) == ("reset password", "use the link")
    found = await client.get("/v1/apps/annotations", headers=chat.auth, params={"keyword": "reset\x00"})
    assert found.status_code == 200 and [a["id"] for a in found.json()["data"]] == [made["id"]]


async def test_reply_answers_a_close_query_without_the_model(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    pw = await _create(client, chat, "How do I reset my password?", "Use the link on the sign-in page.")
    leave = await _create(client, chat, "如何申请年假？", "在人事系统里提交申请。")
    params = (await client.get("/v1/parameters", headers=chat.auth)).json()
    assert params["annotation_reply"] == {"enabled": False}

    done = await _configure(client, chat, "enable", score_threshold=0.8)
    assert done == {"job_id": done["job_id"], "job_status": "completed", "error_msg": ""}
    params = (await client.get("/v1/parameters", headers=chat.auth)).json()
    assert params["annotation_reply"]["enabled"] is True and params["annotation_reply"]["score_threshold"] == 0.8

    calls = len(fake_llm.received)
    r = await blocking(client, chat, query="how do I reset my password", auto_generate_name=False)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == "Use the link on the sign-in page."
    assert body["metadata"]["annotation_reply"] == {"id": pw["id"], "account": {"id": None, "name": "Dify user"}}
    assert body["metadata"]["usage"]["total_tokens"] == 0
    assert len(fake_llm.received) == calls  # no model call

    # streaming: the answer in message events, then message_end naming the annotation; Chinese matches too
    events = await streaming(client, chat, query="如何申请年假", auto_generate_name=False)
    assert "".join(e["answer"] for e in events if e["event"] == "message") == "在人事系统里提交申请。"
    end = events[-1]
    assert end["event"] == "message_end" and end["metadata"]["annotation_reply"]["id"] == leave["id"]
    assert len(fake_llm.received) == calls

    # the answer is stored as the message's answer, and each hit is counted
    q = {"conversation_id": body["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=chat.auth, params=q)).json()["data"]
    assert [m["answer"] for m in stored] == ["Use the link on the sign-in page."]
    hits = {
        a["id"]: a["hit_count"] for a in (await client.get("/v1/apps/annotations", headers=chat.auth)).json()["data"]
    }
    assert hits == {pw["id"]: 1, leave["id"]: 1}

    # an unrelated query goes to the model, and so does everything once reply is off
    fake_llm.reply("from the model")
    r = await blocking(client, chat, query="Write a haiku about autumn leaves", auto_generate_name=False)
    assert r.json()["answer"] == "from the model" and r.json()["metadata"]["annotation_reply"] is None
    assert len(fake_llm.received) == calls + 1

    added = await _create(client, chat, "Where is the office?", "Floor 3, building B.")  # embedded as written
    r = await blocking(client, chat, query="where is the office", auto_generate_name=False)
    assert r.json()["metadata"]["annotation_reply"]["id"] == added["id"]

    assert (await _configure(client, chat, "disable"))["job_status"] == "completed"
    assert (await client.get("/v1/parameters", headers=chat.auth)).json()["annotation_reply"] == {"enabled": False}
    fake_llm.reply("model again")
    r = await blocking(client, chat, query="how do I reset my password", auto_generate_name=False)
    assert r.json()["answer"] == "model again" and r.json()["metadata"]["annotation_reply"] is None


async def test_enabling_with_a_model_that_is_not_configured_ends_in_error(
    client: httpx.AsyncClient, chat: AppKit, fake_llm: FakeLLM
) -> None:
    await _create(client, chat, "How do I reset my password?", "Use the link.")
    status = await _configure(client, chat, "enable", embedding_provider_name="openify", embedding_model_name="nope")
    assert status["job_status"] == "error" and "nope" in status["error_msg"]
    assert not status["error_msg"].startswith("ProviderNotInitialized")
    fake_llm.reply("from the model")
    r = await blocking(client, chat, query="How do I reset my password?", auto_generate_name=False)
    assert r.json()["answer"] == "from the model"


async def test_reply_answers_a_chatflow_turn_without_running_the_workflow(
    client: httpx.AsyncClient, services: Services
) -> None:
    kit = import_app(services, DSL_DIR / "19-chatflow-0.4.0-conversation-var-in-iteration.yml")  # echoes the query
    hours = await _create(client, kit, "What are your opening hours?", "9 to 5, Monday to Friday.")
    assert (await _configure(client, kit, "enable"))["job_status"] == "completed"

    body = {"inputs": {}, "query": "what are your opening hours", "user": "u1", "response_mode": "blocking"}
    r = await client.post("/v1/chat-messages", headers=kit.auth, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["mode"] == "advanced-chat" and got["answer"] == "9 to 5, Monday to Friday."
    assert got["metadata"]["annotation_reply"]["id"] == hours["id"]

    streamed = await client.post("/v1/chat-messages", headers=kit.auth, json={**body, "response_mode": "streaming"})
    events = chatkit.sse_events(streamed.text)
    assert [e["event"] for e in events] == ["message", "message_end"]  # no workflow ran
    assert events[0]["answer"] == "9 to 5, Monday to Friday." and events[0]["message_id"] == events[1]["id"]
    assert events[1]["metadata"]["annotation_reply"]["id"] == hours["id"]

    q = {"conversation_id": got["conversation_id"], "user": "u1"}
    stored = (await client.get("/v1/messages", headers=kit.auth, params=q)).json()["data"]
    assert [m["answer"] for m in stored] == ["9 to 5, Monday to Friday."]

    # a query no annotation answers runs the workflow, which echoes it
    other = await client.post("/v1/chat-messages", headers=kit.auth, json={**body, "query": "hello there"})
    assert other.json()["answer"] == "hello there" and other.json()["metadata"]["annotation_reply"] is None


async def test_concurrent_hits_all_count(client: httpx.AsyncClient, chat: AppKit) -> None:
    faq = await _create(client, chat, "How do I reset my password?", "Use the link on the sign-in page.")
    assert (await _configure(client, chat, "enable"))["job_status"] == "completed"
    answers = await asyncio.gather(
        *(blocking(client, chat, query="how do I reset my password", auto_generate_name=False) for _ in range(12))
    )
    assert {r.json()["answer"] for r in answers} == {"Use the link on the sign-in page."}
    listed = (await client.get("/v1/apps/annotations", headers=chat.auth)).json()["data"]
    assert [(a["id"], a["hit_count"]) for a in listed] == [(faq["id"], 12)]
