"""POST /audio-to-text (multipart) and POST /text-to-audio, for every app mode with the feature on."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response

from openify.api.deps import AppKey, ServicesDep
from openify.api.routes._knowledge_paths import JSON_BODY
from openify.api.schemas.bodies import JsonBody
from openify.errors import UnsupportedMediaType
from openify.services.audio import AUDIO_LIMIT_BYTES

router = APIRouter(tags=["audio"])


class TextToAudioBody(JsonBody):
    message_id: str | None = None
    text: str | None = None
    voice: str | None = None
    user: Any = None
    streaming: Any = None  # accepted and ignored, as in Dify


@router.post("/audio-to-text", summary="Transcribe speech", response_model=None)
async def audio_to_text(request: Request, ctx: AppKey, services: ServicesDep) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("The request must be multipart/form-data.")
    form = await request.form(max_files=2)
    try:
        part = form.get("file")
        upload = part if isinstance(part, StarletteUpload) else None
        data = await upload.read(AUDIO_LIMIT_BYTES + 1) if upload is not None else None
        name, mime = (upload.filename, upload.content_type) if upload is not None else (None, None)
    finally:
        await form.close()
    text = await asyncio.to_thread(services.audio.transcribe, ctx.app, name, mime, data)
    return {"text": text}


@router.post(
    "/text-to-audio", summary="Read a message or a text aloud (MP3)", response_model=None, dependencies=JSON_BODY
)
async def text_to_audio(body: TextToAudioBody, ctx: AppKey, services: ServicesDep) -> Response:
    audio = await asyncio.to_thread(services.audio.speak, ctx.app, body.text, body.voice, body.message_id)
    if audio is None:
        # Dify's body for an unknown message or an empty answer: 200 with JSON null.
        return Response(b"null", media_type="application/json")
    return Response(audio, media_type="audio/mpeg")
