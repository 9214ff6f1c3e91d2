"""POST /audio-to-text and POST /text-to-audio, on the stand-in's /audio/transcriptions and /audio/speech."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from openify.services.container import Services
from openify.settings import Settings
from tests.api import chatkit
from tests.api.chatkit import blocking
from tests.api.dify import assert_dify_error
from tests.conftest import AppKit, import_app
from tests.fake_llm.server import FakeLLM

SPEECH_MODELS = {"whisper-1": {"model_type": "speech2text"}, "tts-1": {"model_type": "tts"}}
MP3 = b"ID3\x04\x00fake mp3 frames"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_llm: FakeLLM) -> Settings:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "providers.yaml").write_text(chatkit.providers_yaml(fake_llm, **SPEECH_MODELS), encoding="utf-8")
    return Settings(_env_file=None, data_dir=data, database_url=database_url)  # type: ignore[call-arg]


@pytest.fixture
def voiced(services: Services) -> AppKit:
    features = {"speech_to_text": {"enabled": True}, "text_to_speech": {"enabled": True, "voice": "nova"}}
    return import_app(services, chatkit.chat_dsl(**features))


@pytest.fixture
def mute(services: Services) -> AppKit:
    return import_app(services, chatkit.chat_dsl())


async def _stt(client: httpx.AsyncClient, kit: AppKit, mime: str = "audio/mp3", data: bytes = MP3) -> httpx.Response:
    files = {"file": ("voice.mp3", data, mime)}
    return await client.post("/v1/audio-to-text", headers=kit.auth, files=files, data={"user": "u1"})


async def test_speech_becomes_text(client: httpx.AsyncClient, voiced: AppKit, fake_llm: FakeLLM) -> None:
    fake_llm.reply("你好，世界")
    r = await _stt(client, voiced)
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "你好，世界"}
    sent = fake_llm.received[-1]
    assert sent["model"] == "whisper-1" and sent["file"]["data"] == MP3 and sent["file"]["content_type"] == "audio/mp3"


async def test_speech_to_text_refusals(client: httpx.AsyncClient, voiced: AppKit, mute: AppKit) -> None:
    r = await _stt(client, mute)
    assert_dify_error(r, 400, "invalid_param")
    assert r.json()["message"] == "Speech to text is not enabled"
    r = await client.post("/v1/audio-to-text", headers=voiced.auth, files={"other": ("a.mp3", MP3, "audio/mp3")})
    assert_dify_error(r, 400, "no_audio_uploaded")
    assert_dify_error(await _stt(client, voiced, mime="audio/mpeg"), 415, "unsupported_audio_type")
    assert_dify_error(await _stt(client, voiced, data=b"\0" * (30 * 1024 * 1024 + 1)), 413, "audio_too_large")


async def test_text_becomes_speech(client: httpx.AsyncClient, voiced: AppKit, fake_llm: FakeLLM) -> None:
    r = await client.post("/v1/text-to-audio", headers=voiced.auth, json={"text": " 早上好 ", "user": "u1"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg"
    assert r.content == "ID3nova|早上好".encode()  # the app's voice; text stripped
    assert fake_llm.received[-1]["model"] == "tts-1"
    r = await client.post("/v1/text-to-audio", headers=voiced.auth, json={"text": "hi", "voice": "onyx", "user": "u1"})
    assert r.content == b"ID3onyx|hi"

    # a message's answer, which wins over text
    fake_llm.reply("the answer")
    message_id = (await blocking(client, voiced, query="q", auto_generate_name=False)).json()["message_id"]
    body = {"message_id": message_id, "text": "ignored", "user": "u1"}
    r = await client.post("/v1/text-to-audio", headers=voiced.auth, json=body)
    assert r.content == b"ID3nova|the answer"


async def test_text_to_speech_refusals_and_null(
    client: httpx.AsyncClient, voiced: AppKit, mute: AppKit, fake_llm: FakeLLM
) -> None:
    r = await client.post("/v1/text-to-audio", headers=voiced.auth, json={"user": "u1"})
    assert_dify_error(r, 400, "invalid_param")
    assert r.json()["message"] == "Text is required"
    plain = {**voiced.auth, "content-type": "text/plain"}
    r = await client.post("/v1/text-to-audio", headers=plain, content=b"hi")
    assert_dify_error(r, 415, "unsupported_media_type")
    r = await client.post("/v1/text-to-audio", headers=mute.auth, json={"text": "hi", "user": "u1"})
    assert_dify_error(r, 400, "invalid_param")
    assert r.json()["message"] == "TTS is not enabled"
    # Dify checks the feature only when no voice is named
    r = await client.post("/v1/text-to-audio", headers=mute.auth, json={"text": "hi", "voice": "echo", "user": "u1"})
    assert r.content == b"ID3echo|hi"

    # an unknown message, a malformed id, another app's message: 200 null, and no model call
    fake_llm.reply("mine")
    theirs = (await blocking(client, mute, query="q", auto_generate_name=False)).json()["message_id"]
    calls = len(fake_llm.received)
    for message_id in ("3f1c8a52-6f7e-4c1b-9a3d-0d6b1f2e4a5c", "not-a-uuid", theirs):
        r = await client.post("/v1/text-to-audio", headers=voiced.auth, json={"message_id": message_id, "user": "u1"})
        assert r.status_code == 200 and r.json() is None, r.text
    assert len(fake_llm.received) == calls


async def test_without_speech_models_the_provider_is_not_initialized(
    client: httpx.AsyncClient, services: Services, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    services.settings.data_dir.joinpath("providers.yaml").write_text(chatkit.providers_yaml(fake_llm))
    services.models.reload()
    features = {"speech_to_text": {"enabled": True}, "text_to_speech": {"enabled": True, "voice": "nova"}}
    kit = import_app(services, chatkit.chat_dsl(**features))
    assert_dify_error(await _stt(client, kit), 400, "provider_not_initialize")
    r = await client.post("/v1/text-to-audio", headers=kit.auth, json={"text": "hi", "user": "u1"})
    assert_dify_error(r, 400, "provider_not_initialize")
