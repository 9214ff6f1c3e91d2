"""Engine test kit: real registries, the real sandbox and provider layer (against the stand-in model
server), and small in-memory implementations of the ports the services layer will implement."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from openify.engine.events import NodeFinished, TextChunk, WorkflowEvent, WorkflowFinished
from openify.engine.graph import parse_graph
from openify.engine.ports import Ports
from openify.engine.runner import RunLimits, SystemInputs, WorkflowRunner
from openify.plugins import build_registries
from openify.providers.base import ChatMessage
from openify.providers.config import build_providers
from openify.providers.manager import ProviderManager
from openify.registry import Registries
from openify.security.sandbox import Sandbox
from openify.settings import SandboxSettings, Settings
from tests.fake_llm.server import FakeLLM

# CPython 3.11.7 can leave the AST builder's recursion bookkeeping off after some async-generator
# error paths (gh-106905), and the hypothesis pytest plugin imports hypothesis (ast.parse under
# assertion rewriting) only at the terminal summary, which then dies with "AST constructor recursion
# depth mismatch". Importing it up front, while the bookkeeping is sound, avoids that late parse.
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401

DSL_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "dsl"  # beside the repository
TEST_DSL = Path(__file__).parent / "dsl"
REGISTRIES: Registries = build_registries()


def load_dsl(name: str) -> dict[str, Any]:
    path = TEST_DSL / name if (TEST_DSL / name).exists() else next(DSL_DIR.glob(f"{name}*.yml"))
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def node_data(dsl: dict[str, Any], node_id: str) -> dict[str, Any]:
    for n in dsl["workflow"]["graph"]["nodes"]:
        if str(n["id"]) == node_id:
            data: dict[str, Any] = n["data"]
            return data
    raise KeyError(node_id)


class MemoryConversationVariables:
    """ConversationVariables port kept in a dict, as the services layer keeps it in the database."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    async def load(self, conversation_id: str) -> Mapping[str, Any]:
        return dict(self.stored.get(conversation_id, {}))

    async def save(self, conversation_id: str, name: str, value: Any) -> None:
        self.stored.setdefault(conversation_id, {})[name] = value


class MemoryHistory:
    def __init__(self, turns: Sequence[tuple[str, str]] = ()) -> None:
        self.turns = list(turns)
        self.asked: list[int] = []

    async def messages(self, conversation_id: str, limit: int) -> Sequence[ChatMessage]:
        self.asked.append(limit)
        out: list[ChatMessage] = []
        for q, a in self.turns[-limit:]:
            out += [ChatMessage("user", q), ChatMessage("assistant", a)]
        return out


class MemoryKnowledge:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records, self.calls = records, list[tuple[list[str], str]]()

    async def retrieve(
        self, dataset_ids: Sequence[str], query: str, config: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        self.calls.append((list(dataset_ids), query))
        return list(self.records)


class DirFiles:
    """FileStore port over a directory: a file mapping's `related_id` is its name there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def read(self, file: Mapping[str, Any], user_id: str = "") -> bytes:
        return (self.root / str(file["related_id"])).read_bytes()

    async def save(self, content: bytes, filename: str, mime_type: str) -> Mapping[str, Any]:
        (self.root / filename).write_bytes(content)
        return file_value(filename, mime_type=mime_type, size=len(content))


def file_value(name: str, kind: str = "document", mime_type: str = "text/plain", size: int = 1) -> dict[str, Any]:
    ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return {
        "dify_model_identity": "__dify__file__",
        "id": name,
        "type": kind,
        "transfer_method": "local_file",
        "remote_url": None,
        "related_id": name,
        "filename": name,
        "extension": ext,
        "mime_type": mime_type,
        "size": size,
        "url": f"http://files.local/{name}",
    }


@dataclass
class Outcome:
    events: list[WorkflowEvent]
    finished: WorkflowFinished
    nodes: dict[str, NodeFinished] = field(default_factory=dict)

    @property
    def outputs(self) -> Mapping[str, Any]:
        return self.finished.outputs

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextChunk))

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def run_dsl(
    dsl: dict[str, Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    ports: Ports | None = None,
    system: SystemInputs | None = None,
    limits: RunLimits | None = None,
    conversation_variables: Mapping[str, Any] | None = None,
) -> Outcome:
    runner = WorkflowRunner(parse_graph(dsl), REGISTRIES, ports or Ports(sandbox=SANDBOX), limits)
    run = runner.start(inputs or {}, system, conversation_variables=conversation_variables)
    events = [ev async for ev in run.events()]
    finished = events[-1]
    assert isinstance(finished, WorkflowFinished)
    nodes = {e.node_id: e for e in events if isinstance(e, NodeFinished)}
    return Outcome(events, finished, nodes)


SANDBOX = Sandbox(SandboxSettings())


@pytest.fixture
async def models(fake_llm: FakeLLM, tmp_path: Path) -> AsyncIterator[ProviderManager]:
    """The real provider layer, every DSL provider name served by the stand-in model server."""
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    providers = build_providers(
        {"local": {"type": "openai_compatible", "base_url": fake_llm.base_url, "api_key": "sk-test", "max_retries": 0}},
        default="local",
    )
    manager = ProviderManager(settings, REGISTRIES, providers)
    yield manager
    await manager.aclose()
