"""Speech to text and text to speech for apps (Dify's AudioService), on the configured speech models."""

from __future__ import annotations

import uuid
from typing import Any

from openify.errors import AudioTooLarge, InvalidParam, NoAudioUploaded, UnsupportedAudioType
from openify.providers.base import ModelResolver
from openify.services.app_parameters import features_of
from openify.storage.db import Database
from openify.storage.tables import App, Message

AUDIO_LIMIT_BYTES = 30 * 1024 * 1024  # Dify's FILE_SIZE_LIMIT for speech to text
# Dify compares the part's MIME type with audio/<extension> of these; so audio/mpeg is refused, as there.
AUDIO_TYPES = frozenset(f"audio/{ext}" for ext in ("mp3", "m4a", "wav", "amr", "mpga"))


def _feature(app: App, name: str) -> dict[str, Any]:
    value = features_of(app).get(name)
    return value if isinstance(value, dict) else {}


class AudioService:
    def __init__(self, db: Database, models: ModelResolver) -> None:
        self._db, self._models = db, models

    def transcribe(self, app: App, filename: str | None, mime_type: str | None, data: bytes | None) -> str:
        """Dify's checks, in its order: the feature, a file, its type, its size; then the model."""
        if not _feature(app, "speech_to_text").get("enabled"):
            raise InvalidParam("Speech to text is not enabled")
        if data is None:
            raise NoAudioUploaded()
        if mime_type not in AUDIO_TYPES:
            raise UnsupportedAudioType()
        if len(data) > AUDIO_LIMIT_BYTES:
            raise AudioTooLarge(f"Audio size larger than {AUDIO_LIMIT_BYTES // (1024 * 1024)} mb")
        return self._models.speech_to_text().transcribe(data, filename or "audio.mp3", mime_type)

    def speak(self, app: App, text: str | None, voice: str | None, message_id: str | None) -> bytes | None:
        """MP3 of `text`, or of the answer of `message_id` (which wins); None, as Dify's `null` body, for a
        message that is not there or has no answer yet. Dify finds the message in any app; here only in this one."""
        if message_id:
            try:
                uuid.UUID(message_id)
            except ValueError:
                return None
            with self._db.session() as s:
                message = s.get(Message, message_id)
                if message is None or message.app_id != app.id:
                    return None
                if message.answer == "" and message.status == "normal":
                    return None
                text = message.answer
        elif text is None:
            raise InvalidParam("Text is required")
        if voice is None:  # Dify checks the feature only when no voice is asked for
            tts = _feature(app, "text_to_speech")
            if not tts.get("enabled"):
                raise InvalidParam("TTS is not enabled")
            voice = str(tts.get("voice") or "") or None
        model = self._models.text_to_speech()
        if not voice:
            voices = model.voices()
            if not voices:
                raise InvalidParam("Sorry, no voice available.")
            voice = voices[0]
        return model.speak(text.strip(), voice)
