"""A stand-in model server on loopback: OpenAI-compatible (plus Anthropic's /v1/messages), real HTTP.

Plain asyncio on its own thread and loop, so a test can script replies and failures from the test's loop
and the server still answers while the test awaits. HTTP/1.1 is hand-written (keep-alive, chunked
streaming) because the failure modes tests need (a malformed frame, a connection cut after N chunks,
noticing a client that hung up) are awkward to produce through an ASGI server.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hashlib
import json
import math
import re
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"\s*[{_CJK}]|\s*[^\s{_CJK}]+|\s+$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


MODERATION_WORDS = ("violence", "暴力")


def split_tokens(text: str) -> list[str]:
    """Stream pieces of an answer: words with their leading space, single CJK characters."""
    return _TOKEN.findall(text) or ([text] if text else [])


@dataclass(frozen=True)
class _Text:
    text: str
    reasoning: str = ""


@dataclass(frozen=True)
class _ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


class _Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class FakeLLM:
    """Script replies and failures, then read what the server received."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, model: str = "fake-model") -> None:
        self.host, self.port, self.model = host, port, model
        self.base_url = ""
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # request headers, parallel to `received`
        self.token_latency_s = 0.0
        self.aborted = 0  # streams the client hung up on before the end
        self.send_usage = True  # False: no usage in any answer, as some servers do
        self.ignore_stream = False  # True: answer `stream: true` with one JSON body, as some servers do
        self.moderation_words: tuple[str, ...] = MODERATION_WORDS  # `/moderations` flags inputs containing one
        self._replies: deque[_Text | _ToolCall] = deque()
        self._failures: deque[_Failure] = deque()
        self._malformed = 0
        self._cuts: deque[int] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ids = 0
        self._generation = 0  # bumped by reset(): streams of an earlier test stop and count nothing

    # --- scripting ------------------------------------------------------------------------------
    def reply(self, *texts: str) -> None:
        """Queue one text answer per future chat/completion call."""
        self._replies.extend(_Text(t) for t in texts)

    def reply_with_reasoning(self, reasoning: str, text: str) -> None:
        """Queue one chat answer streamed as `reasoning_content` deltas first (DeepSeek R1 style), then text."""
        self._replies.append(_Text(text, reasoning))

    def reply_tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        """Queue one answer that is a single tool call."""
        self._replies.append(_ToolCall(name, arguments))

    def fail_next(
        self, status: int, body: dict[str, Any] | None = None, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """The next `times` POST requests get this status, body (and headers, e.g. retry-after) instead of an answer."""
        if body is None:
            body = {"error": {"message": f"fake upstream error {status}", "type": "fake_error", "code": str(status)}}
        extra = tuple((headers or {}).items())
        self._failures.extend(_Failure(status, body, extra) for _ in range(times))

    def malformed_next(self) -> None:
        """The next stream sends a data frame that is not JSON after its first token."""
        self._malformed += 1

    def cut_next(self, after_chunks: int) -> None:
        """The next stream closes the connection after `after_chunks` data frames, without ending the body."""
        self._cuts.append(after_chunks)

    def reset(self) -> None:
        """Forget everything scripted and received (the fixture calls this between tests)."""
        self.received.clear()
        self.headers.clear()
        self._replies.clear()
        self._failures.clear()
        self._cuts.clear()
        self._malformed = 0
        self.token_latency_s = 0.0
        self.aborted = 0
        self.send_usage = True
        self.ignore_stream = False
        self.moderation_words = MODERATION_WORDS
        self._generation += 1

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeLLM:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-llm", daemon=True)
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}/v1"
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, self.host, self.port)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
        # Connections a client keeps alive are still waiting for their next request: end them here.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- HTTP -----------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                if not await self._dispatch(request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        line = await reader.readline()
        if not line.strip():
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = header.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b""
        ctype = headers.get("content-type", "")
        body = _multipart(ctype, raw) if ctype.startswith("multipart/form-data") else json.loads(raw) if raw else {}
        return _Request(method, target.split("?", 1)[0], headers, body)

    async def _dispatch(self, req: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if req.method == "GET" and req.path.endswith("/models"):
            models = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "openify"}]}
            return await self._send_json(writer, 200, models)
        if req.method != "POST":
            return await self._send_json(writer, 404, {"error": {"message": f"no route {req.path}"}})
        self.received.append(req.body)
        self.headers.append(req.headers)
        if self._failures:
            failure = self._failures.popleft()
            return await self._send_json(writer, failure.status, failure.body, failure.headers)
        path = req.path
        if path.endswith("/chat/completions"):
            return await self._chat(req.body, reader, writer)
        if path.endswith("/completions"):
            return await self._legacy_completion(req.body, reader, writer)
        if path.endswith("/embeddings"):
            return await self._send_json(writer, 200, self._embeddings(req.body))
        if path.endswith("/moderations"):
            return await self._send_json(writer, 200, self._moderations(req.body))
        if path.endswith("/rerank"):
            return await self._send_json(writer, 200, self._rerank(req.body))
        if path.endswith("/messages"):
            return await self._anthropic(req.body, reader, writer)
        if path.endswith("/audio/transcriptions"):
            # The next scripted text, else what it was sent: speech to text that can be checked end to end.
            reply = self._replies.popleft() if self._replies else None
            heard = reply.text if isinstance(reply, _Text) else f"heard {req.body['file']['size']} bytes"
            return await self._send_json(writer, 200, {"text": heard})
        if path.endswith("/audio/speech"):
            # "MP3" whose bytes carry the voice and the text, so a test can see both arrived.
            audio = b"ID3" + f"{req.body.get('voice')}|{req.body.get('input')}".encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ncontent-length: {len(audio)}\r\n\r\n"
            writer.write(head.encode() + audio)
            await writer.drain()
            return True
        return await self._send_json(writer, 404, {"error": {"message": f"no route {path}"}})

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, payload: dict[str, Any], headers: Any = ()
    ) -> bool:
        data = json.dumps(payload, ensure_ascii=False).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
            f"{extra}content-length: {len(data)}\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        return True

    async def _send_stream(self, frames: list[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Send SSE frames as HTTP chunks, sleeping `token_latency_s` between them; False closes the connection."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        await writer.drain()
        cut = self._cuts.popleft() if self._cuts else None
        generation = self._generation
        hang_up = asyncio.ensure_future(reader.read(1))  # completes with b"" when the client closes
        try:
            for sent, frame in enumerate(frames):
                if (cut is not None and sent >= cut) or generation != self._generation:
                    return False
                if hang_up.done():
                    self.aborted += 1
                    return False
                if sent and self.token_latency_s > 0:
                    await asyncio.sleep(self.token_latency_s)
                data = frame.encode()
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
            hang_up.cancel()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except ConnectionError:
            self.aborted += generation == self._generation
            return False
        finally:
            hang_up.cancel()

    # --- answers --------------------------------------------------------------------------------
    def _next_reply(self, prompt: str) -> _Text | _ToolCall:
        return self._replies.popleft() if self._replies else _Text("echo: " + prompt)

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    def _malformed_now(self) -> bool:
        if self._malformed:
            self._malformed -= 1
            return True
        return False

    async def _chat(self, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        answer = self._next_reply(_text_of(users[-1].get("content")) if users else "")
        prompt_tokens = sum(len(split_tokens(_text_of(m.get("content")))) for m in messages)
        cid, created, model = self._next_id("chatcmpl"), int(time.time()), body.get("model", self.model)
        if isinstance(answer, _ToolCall):
            arguments = json.dumps(answer.arguments, ensure_ascii=False)
            call = {
                "id": self._next_id("call"),
                "type": "function",
                "function": {"name": answer.name, "arguments": arguments},
            }
            pieces, finish, message = (
                [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]],
                "tool_calls",
                {"role": "assistant", "content": None, "tool_calls": [call]},
            )
        else:
            pieces, finish, message = split_tokens(answer.text), "stop", {"role": "assistant", "content": answer.text}
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        if not body.get("stream") or self.ignore_stream:
            return await self._send_json(
                writer,
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return "data: " + json.dumps(payload, ensure_ascii=False) + "\n\n"

        if isinstance(answer, _ToolCall):
            head = {**call, "index": 0, "function": {"name": answer.name, "arguments": ""}}
            frames = [chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
            frames += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
        else:
            frames = [chunk({"role": "assistant", "content": ""})]
            frames += [chunk({"reasoning_content": p, "content": None}) for p in split_tokens(answer.reasoning)]
            frames += [chunk({"content": p}) for p in pieces]
        if self._malformed_now():
            frames.insert(min(2, len(frames)), 'data: {"choices": [{"delta": {"content": "oops"\n\n')
        frames.append(chunk({}, finish))
        if self.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            frames.append("data: " + json.dumps(payload) + "\n\n")
        frames.append("data: [DONE]\n\n")
        return await self._send_stream(frames, reader, writer)

    async def _legacy_completion(
        self, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        prompt = body.get("prompt", "")
        prompt = prompt[-1] if isinstance(prompt, list) and prompt else prompt
        answer = self._next_reply(str(prompt))
        text = answer.text if isinstance(answer, _Text) else json.dumps(answer.arguments)
        pieces = split_tokens(text)
        prompt_tokens = len(split_tokens(str(prompt)))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        cid, created, model = self._next_id("cmpl"), int(time.time()), body.get("model", self.model)
        if not body.get("stream") or self.ignore_stream:
            return await self._send_json(
                writer,
                200,
                {
                    "id": cid,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": usage,
                },
            )

        def chunk(piece: str, finish_reason: str | None = None) -> str:
            payload = {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "text": piece, "finish_reason": finish_reason}],
            }
            return "data: " + json.dumps(payload, ensure_ascii=False) + "\n\n"

        frames = [chunk(p) for p in pieces]
        if self._malformed_now():
            frames.insert(min(1, len(frames)), "data: {not json\n\n")
        frames.append(chunk("", "stop"))
        if self.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            payload = {"id": cid, "object": "text_completion", "choices": [], "usage": usage}
            frames.append("data: " + json.dumps(payload) + "\n\n")
        frames.append("data: [DONE]\n\n")
        return await self._send_stream(frames, reader, writer)

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        dims = int(body.get("dimensions") or 16)
        data = [
            {"object": "embedding", "index": i, "embedding": hash_vector(str(t), dims)} for i, t in enumerate(texts)
        ]
        tokens = sum(len(split_tokens(str(t))) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", self.model),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _moderations(self, body: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's moderation body: an input is flagged when it contains one of `moderation_words`."""
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        results = []
        for text in inputs:
            flagged = any(w in str(text).lower() for w in self.moderation_words)
            results.append({"flagged": flagged, "categories": {"violence": flagged}, "category_scores": {}})
        return {"id": self._next_id("modr"), "model": body.get("model"), "results": results}

    def _rerank(self, body: dict[str, Any]) -> dict[str, Any]:
        query_words = set(str(body.get("query", "")).lower().split())
        documents = [d if isinstance(d, str) else d.get("text", "") for d in body.get("documents", [])]
        scored: list[dict[str, Any]] = []
        for i, doc in enumerate(documents):
            words = set(doc.lower().split())
            overlap = len(query_words & words) / max(1, len(query_words | words))
            scored.append({"index": i, "relevance_score": round(overlap, 6), "document": {"text": doc}})
        scored.sort(key=lambda r: -float(r["relevance_score"]))
        top_n = body.get("top_n")
        tokens = sum(len(split_tokens(d)) for d in documents)
        return {
            "id": self._next_id("rerank"),
            "model": body.get("model", self.model),
            "results": scored[:top_n] if top_n else scored,
            "usage": {"total_tokens": tokens},
        }

    async def _anthropic(
        self, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        answer = self._next_reply(_text_of(users[-1].get("content")) if users else "")
        system = body.get("system") or ""
        input_tokens = len(split_tokens(_text_of(system))) + sum(
            len(split_tokens(_text_of(m.get("content")))) for m in messages
        )
        mid, model = self._next_id("msg"), body.get("model", self.model)
        if isinstance(answer, _ToolCall):
            arguments = json.dumps(answer.arguments, ensure_ascii=False)
            block: dict[str, Any] = {"type": "tool_use", "id": self._next_id("toolu"), "name": answer.name}
            pieces, stop_reason = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]], "tool_use"
            content = [{**block, "input": answer.arguments}]
        else:
            pieces, stop_reason = split_tokens(answer.text), "end_turn"
            block, content = {"type": "text", "text": ""}, [{"type": "text", "text": answer.text}]
        if not body.get("stream") or self.ignore_stream:
            return await self._send_json(
                writer,
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "usage": {"input_tokens": input_tokens, "output_tokens": len(pieces)},
                },
            )

        def event(kind: str, payload: dict[str, Any]) -> str:
            return f"event: {kind}\ndata: " + json.dumps({"type": kind, **payload}, ensure_ascii=False) + "\n\n"

        start = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        frames = [
            event("message_start", {"message": start}),
            event("content_block_start", {"index": 0, "content_block": block}),
        ]
        if block["type"] == "tool_use":
            block["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        else:
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        frames += [event("content_block_delta", {"index": 0, "delta": d}) for d in deltas]
        if self._malformed_now():
            frames.insert(min(3, len(frames)), "event: content_block_delta\ndata: {not json\n\n")
        frames += [
            event("content_block_stop", {"index": 0}),
            event(
                "message_delta",
                {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": len(pieces)}},
            ),
            event("message_stop", {}),
        ]
        return await self._send_stream(frames, reader, writer)


def _text_of(content: Any) -> str:
    """The text of an OpenAI or Anthropic message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def hash_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector derived from a hash of the text."""
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", digest))
        counter += 1
    values = values[:dims]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {field: text, file field: {filename, content_type, size, data}}.
    The stdlib's MIME parser reads it: this stand-in needs no web framework."""
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + raw
    )
    out: dict[str, Any] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            out[str(name)] = data.decode()
        else:
            out[str(name)] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(data),
                "data": data,
            }
    return out
