"""Contract test: schemathesis drives Dify's published OpenAPI spec against a live Openify server.

One real app of each mode (chat, completion, workflow, chatflow), a knowledge base with a document and segments,
and real keys. Every operation of the spec gets generated requests; about half of them name ids that exist
(conversations, messages, workflow runs, datasets, documents, segments...), so the 2xx paths are exercised, not
only the 404s. Each response must not be a 5xx and must match the spec's status codes, content types and response
schemas, except where Dify's own server differs from its spec: those cases are listed, with evidence, in
`tests/api/contract_allowlist.py`.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from schemathesis import checks as st_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from openify.cli import build_registries
from openify.services.container import Services
from openify.settings import Settings
from tests.api.chatkit import CHAT_DSL, COMPLETION_DSL, providers_yaml
from tests.api.contract_allowlist import NOT_SERVED, allowed
from tests.conftest import DSL_DIR, REPO, LiveServer, start_server, stop_server
from tests.fake_llm.server import FakeLLM


def _import_all_of_schemathesis() -> None:
    """Import (and so parse) every schemathesis module now, at collection. It imports many lazily; pytest rewrites
    them as a plugin's, and on CPython 3.11 parsing one later, in a worker where another test had caught a
    RecursionError, failed ("AST constructor recursion depth mismatch")."""
    for module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: S112 - optional extras (graphql, ...) that this test never uses
            continue


_import_all_of_schemathesis()
SPEC = REPO.parent / "shared" / "reference" / "dify-service-openapi.json"
WORKFLOW_DSL = DSL_DIR / "09-workflow-0.3.1-dual-switch-variable-aggregator.yml"
CHATFLOW_DSL = DSL_DIR / "20-chatflow-0.5.0-conversation-var-v1-overwrite.yml"
# Generated requests per operation: ~85 operations on 2 cores keep the test near a minute per database.
# OPENIFY_TEST_CONTRACT_EXAMPLES=50 explores further (minutes); CI keeps the default.
MAX_EXAMPLES = int(os.environ.get("OPENIFY_TEST_CONTRACT_EXAMPLES", "8"))  # noqa: TID251
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


@pytest.fixture
def server(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A live server with an app of each mode; yields it and the app keys by mode (plus `dataset`)."""
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "providers.yaml").write_text(providers_yaml(fake_llm), encoding="utf-8")
    settings = Settings(_env_file=None, data_dir=data, database_url=database_url)  # type: ignore[call-arg]
    services = Services.build(settings, build_registries(settings.plugins))
    services.start()
    keys: dict[str, str] = {}
    try:
        for mode, dsl in (
            ("chat", CHAT_DSL),
            ("completion", COMPLETION_DSL),
            ("workflow", WORKFLOW_DSL),
            ("advanced-chat", CHATFLOW_DSL),
        ):
            app, _ = services.apps.import_dsl(dsl.read_bytes())
            keys[mode], _ = services.keys.create("app", app.id)
        keys["dataset"], _ = services.keys.create("dataset")
    finally:
        services.stop()
    live = start_server(data, database_url)
    try:
        yield live, keys
    finally:
        stop_server(live)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _seed(base: str, keys: dict[str, str]) -> dict[str, str]:
    """Create something behind every kind of id the spec's paths name; returns the ids by path-parameter name."""
    ids: dict[str, str] = {}
    with httpx.Client(base_url=base, timeout=30) as c:
        chat = c.post(
            "/chat-messages",
            headers=_auth(keys["chat"]),
            json={"inputs": {}, "query": "你好", "user": "u1", "response_mode": "blocking"},
        )
        assert chat.status_code == 200, chat.text
        ids["conversation_id"], ids["message_id"] = chat.json()["conversation_id"], chat.json()["message_id"]
        ids["task_id"] = chat.json()["task_id"]
        flow = c.post(
            "/chat-messages",
            headers=_auth(keys["advanced-chat"]),
            json={"inputs": {}, "query": "hi", "user": "u1", "response_mode": "blocking"},
        )
        assert flow.status_code == 200, flow.text
        run = c.post(
            "/workflows/run",
            headers=_auth(keys["workflow"]),
            json={"inputs": {"switch1": 1, "switch2": 0}, "user": "u1", "response_mode": "blocking"},
        )
        assert run.status_code == 200, run.text
        ids["workflow_run_id"] = run.json()["workflow_run_id"]
        ids["workflow_id"] = c.get("/info", headers=_auth(keys["workflow"])).json().get("id", "")
        up = c.post(
            "/files/upload",
            headers=_auth(keys["chat"]),
            data={"user": "u1"},
            files={"file": ("a.txt", b"hello", "text/plain")},
        )
        assert up.status_code == 201, up.text
        ids["file_id"] = up.json()["id"]
        ann = c.post("/apps/annotations", headers=_auth(keys["chat"]), json={"question": "q", "answer": "a"})
        assert ann.status_code in (200, 201), ann.text
        ids["annotation_id"] = ann.json()["id"]

        dh = _auth(keys["dataset"])
        ds = c.post("/datasets", headers=dh, json={"name": "kb", "indexing_technique": "economy"})
        assert ds.status_code == 200, ds.text
        ids["dataset_id"] = ds.json()["id"]
        doc = c.post(
            f"/datasets/{ids['dataset_id']}/document/create-by-text",
            headers=dh,
            json={"name": "d", "text": "第一段。\n\nsecond paragraph", "indexing_technique": "economy"},
        )
        assert doc.status_code == 200, doc.text
        ids["document_id"], ids["batch"] = doc.json()["document"]["id"], doc.json()["batch"]
        deadline = time.monotonic() + 60
        while True:
            st_ = c.get(f"/datasets/{ids['dataset_id']}/documents/{ids['batch']}/indexing-status", headers=dh)
            if all(d["indexing_status"] in ("completed", "error") for d in st_.json()["data"]):
                break
            assert time.monotonic() < deadline, st_.text
            time.sleep(0.05)
        segs = c.get(f"/datasets/{ids['dataset_id']}/documents/{ids['document_id']}/segments", headers=dh)
        ids["segment_id"] = segs.json()["data"][0]["id"]
        md = c.post(f"/datasets/{ids['dataset_id']}/metadata", headers=dh, json={"type": "string", "name": "author"})
        assert md.status_code in (200, 201), md.text
        ids["metadata_id"] = md.json()["id"]
    return ids


def _keys_for(path: str, keys: dict[str, str]) -> list[str]:
    """The keys that may reach an operation: its app mode's key, or the knowledge key."""
    if path.startswith(("/datasets", "/workspaces")):
        return [keys["dataset"]]
    if path.startswith(("/workflows", "/workflow/")):
        return [keys["workflow"]]
    if path.startswith("/completion-messages"):
        return [keys["completion"]]
    if path.startswith(("/chat-messages", "/conversations", "/messages", "/apps/", "/app/")):
        return [keys["chat"], keys["advanced-chat"]]
    return [keys["chat"], keys["completion"], keys["workflow"], keys["advanced-chat"]]


def _order(method: str, path: str) -> tuple[int, int, str]:
    """Destructive operations run last (deeper resources first) so the ids stay alive for the others."""
    return (1 if method == "DELETE" else 0, -path.count("/"), path)


# The spec types every text/event-stream body as a string; the events themselves are its component schemas,
# one union per kind of stream (discriminated by `event`). Each `data:` frame is checked against its schema.
_STREAMS = {
    "/chat-messages": "ChunkChatEvent",
    "/completion-messages": "ChunkCompletionEvent",
    "/workflows/run": "ChunkWorkflowEvent",
    "/workflows/{workflow_id}/run": "ChunkWorkflowEvent",
    "/workflow/{workflow_run_id}/events": "ChunkWorkflowEvent",
}


FORMATS = Draft7Validator.FORMAT_CHECKER


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable: true` becomes a null alternative."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "discriminator", "example")}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str) and "$ref" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _event_validators(spec: dict[str, Any]) -> dict[str, dict[str, Draft7Validator]]:
    """For each stream kind, a validator per `event` name, from the union's discriminator mapping."""
    components = _json_schema(spec["components"])
    out: dict[str, dict[str, Draft7Validator]] = {}
    for union in set(_STREAMS.values()):
        mapping = spec["components"]["schemas"][union]["discriminator"]["mapping"]
        out[union] = {
            event: Draft7Validator(
                {"$ref": ref, "components": components}, format_checker=Draft7Validator.FORMAT_CHECKER
            )
            for event, ref in mapping.items()
        }
    return out


def _sse_failures(op_path: str, text: str, validators: dict[str, dict[str, Draft7Validator]]) -> list[str]:
    """One line per schema error of the stream's `data:` frames (first error per event kind)."""
    union = _STREAMS.get(op_path)
    if union is None:
        return []
    lines: list[str] = []
    for block in text.split("\n\n"):
        data = next((ln[len("data: ") :] for ln in block.splitlines() if ln.startswith("data: ")), None)
        if data is None:
            continue
        event = json.loads(data)
        validator = validators[union].get(str(event.get("event")))
        if validator is None:
            lines.append(f"SSE event {event.get('event')!r} is not in {union}")
            continue
        for error in validator.iter_errors(event):
            where = "/".join(str(p) for p in error.absolute_path)
            lines.append(f"SSE {event.get('event')} violates schema at /{where}: {error.message[:120]}")
    return lines


def _describe(method: str, path: str, status: int, failure: Any) -> str:
    """One line per kind of mismatch: the operation, the status, the check and where in the schema."""
    lines = str(failure.message).splitlines()
    where = next((line.strip() for line in lines if line.startswith("Schema at ")), "")
    return f"{method} {path} -> {status}: {failure.title}: {lines[0] if lines else ''} {where}"


def _run_operation(
    op: Any,
    base: str,
    keys: list[str],
    ids: dict[str, str],
    failures: list[str],
    validators: dict[str, dict[str, Draft7Validator]],
) -> None:
    @hypothesis.given(case=op.as_strategy(), key=st.sampled_from(keys), real_ids=st.booleans())
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def check(case: Any, key: str, real_ids: bool) -> None:
        if real_ids and case.path_parameters:
            for name in list(case.path_parameters):
                if name in ids:
                    case.path_parameters[name] = ids[name]
        case.headers = {**(case.headers or {}), **_auth(key)}
        response = case.call(base_url=base, timeout=30)
        operation = f"{op.method.upper()} {op.path}"
        content_type = (response.headers.get("content-type") or [""])[0]
        if response.status_code == 200 and content_type.startswith("text/event-stream"):
            for line in _sse_failures(op.path, response.text, validators):
                full = f"{operation} -> 200: {line}"
                if allowed(operation, full) is None:
                    failures.append(f"{full}\n    {case.as_curl_command()[:3000]}")
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                line = _describe(op.method.upper(), op.path, response.status_code, failure)
                if allowed(operation, line) is None:
                    failures.append(f"{line}\n    {case.as_curl_command()[:3000]}\n    -> {response.text[:300]}")

    check()


@pytest.mark.timeout(300)  # about a minute per database on 2 idle cores; more on a loaded machine
def test_openify_follows_difys_openapi_spec(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = server
    base = f"{live.base_url}/v1"
    ids = _seed(base, keys)
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    validators = _event_validators(spec)
    schema = schemathesis.openapi.from_dict(spec)
    # NUL characters reach PostgreSQL as a 500 on several routes today; refusing or stripping them everywhere is
    # issue 15 point 8, which has its own test sending \x00 to every route. Until that lands they stay out here,
    # so this test reports contract mismatches, not that one known gap. Deterministic: CI sees the same cases.
    schema.config.generation.update(allow_x00=False, deterministic=True)
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), [r for r in results if not isinstance(r, Ok)]
    ops = [r.ok() for r in results if isinstance(r, Ok) and r.ok().path not in NOT_SERVED]
    failures: list[str] = []
    only = re.compile(os.environ.get("OPENIFY_TEST_CONTRACT_ONLY", ""))  # noqa: TID251 - narrows a local run
    for op in sorted(ops, key=lambda o: _order(o.method.upper(), o.path)):
        if not only.search(f"{op.method.upper()} {op.path}"):
            continue
        _run_operation(op, base, _keys_for(op.path, keys), ids, failures, validators)
    unique = sorted(set(failures))
    log = (live.data_dir / "server.log").read_text(errors="replace")
    tracebacks = log[log.find("Traceback") :][-4000:] if "Traceback" in log else ""
    assert not unique, f"{len(unique)} mismatches with Dify's spec:\n" + "\n".join(unique) + "\n" + tracebacks
