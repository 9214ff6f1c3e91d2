"""The builtin `audio` tools (asr, tts) in tool nodes, on the speech models of providers.yaml (the stand-in's
/audio/transcriptions and /audio/speech), through the workflow API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from openify.services.container import Services
from openify.settings import Settings
from tests.api import chatkit
from tests.api.workflow_kit import dsl, end, start
from tests.conftest import import_app
from tests.fake_llm.server import FakeLLM

SPEECH_MODELS = {"whisper-1": {"model_type": "speech2text"}, "tts-1": {"model_type": "tts"}}
MP3 = b"ID3\x04\x00fake mp3 frames"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "providers.yaml").write_text(chatkit.providers_yaml(fake_llm, **SPEECH_MODELS), encoding="utf-8")
    return Settings(_env_file=None, data_dir=data, database_url=database_url)  # type: ignore[call-arg]


def _audio(node_id: str, tool: str, **params: object) -> dict[str, object]:
    return {
        "id": node_id,
        "type": "tool",
        "provider_id": "audio",
        "provider_type": "builtin",
        "provider_name": "audio",
        "tool_name": tool,
        "tool_configurations": {"voice": "nova"} if tool == "tts" else {},
        "tool_parameters": params,
    }


async def test_asr_then_tts_in_tool_nodes(client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM) -> None:
    app = dsl(
        [
            start({"variable": "voice", "label": "voice", "type": "file", "required": True}),
            _audio("asr", "asr", audio_file={"type": "variable", "value": ["start", "voice"]}),
            _audio("tts", "tts", text={"type": "mixed", "value": "你说：{{#asr.text#}}"}),
            end(heard=["asr", "text"], speech=["tts", "files"]),
        ],
        [("start", "asr"), ("asr", "tts"), ("tts", "end")],
    )
    kit = import_app(services, app)
    up = await client.post(
        "/v1/files/upload", headers=kit.auth, data={"user": "u1"}, files={"file": ("v.mp3", MP3, "audio/mpeg")}
    )
    assert up.status_code == 201, up.text
    ref = {"type": "audio", "transfer_method": "local_file", "upload_file_id": up.json()["id"]}
    fake_llm.reply("早上好")
    r = await client.post("/v1/workflows/run", headers=kit.auth, json={"inputs": {"voice": ref}, "user": "u1"})
    data = r.json()["data"]
    assert data["status"] == "succeeded", data
    assert data["outputs"]["heard"] == "早上好"
    transcribed = next(x for x in fake_llm.received if x.get("model") == "whisper-1")
    assert transcribed["file"]["data"] == MP3
    (speech,) = data["outputs"]["speech"]
    assert speech["mime_type"] == "audio/mpeg" and speech["transfer_method"] == "tool_file"
    got = await client.get(speech["url"])
    assert got.status_code == 200 and got.content == "ID3nova|你说：早上好".encode()
