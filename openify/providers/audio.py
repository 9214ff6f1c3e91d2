"""Speech models of OpenAI-compatible APIs: `/audio/transcriptions` (speech to text) and `/audio/speech` (text to
speech), behind Dify's `/audio-to-text` and `/text-to-audio`."""

from __future__ import annotations

from openify.providers.clients import ClientPool
from openify.providers.config import ModelTarget
from openify.providers.openai_compatible import OPENAI_BASE_URL, bearer_headers

# OpenAI's voices, which Dify's OpenAI tts-1 offers; a model's `voices` in providers.yaml replaces them.
OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")


class _OpenAIAudio:
    def __init__(self, target: ModelTarget, clients: ClientPool) -> None:
        self.target, self._clients = target, clients
        self.name = target.model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.target.provider!r}, model={self.name!r})"

    def _url(self, path: str) -> str:
        return (self.target.config.base_url or OPENAI_BASE_URL).rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return bearer_headers(self.target)


class OpenAISpeechToText(_OpenAIAudio):
    def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        files = {"file": (filename, audio, mime_type)}
        response = self._clients.post(
            self.target, self._url("/audio/transcriptions"), self._headers(), files=files, data={"model": self.name}
        )
        return str(response.json().get("text") or "")


class OpenAITextToSpeech(_OpenAIAudio):
    def voices(self) -> list[str]:
        return list(self.target.settings.voices or OPENAI_VOICES)

    def speak(self, text: str, voice: str) -> bytes:
        body = {"model": self.name, "input": text, "voice": voice, "response_format": "mp3"}
        return self._clients.post(self.target, self._url("/audio/speech"), self._headers(), json=body).content
