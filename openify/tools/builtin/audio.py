"""Dify's builtin `audio` provider: `asr` (speech to text) and `tts` (text to speech) on the configured models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.errors import OpenifyError
from openify.tools.base import (
    FileMessage,
    TextMessage,
    ToolCall,
    ToolError,
    ToolHost,
    ToolMessage,
    ToolProviderDeclaration,
)
from openify.tools.builtin.declarations import label, param, tool

DECLARATION = ToolProviderDeclaration(
    provider_type="builtin",
    id="audio",
    name="audio",
    label=label("Audio", "音频"),
    description=label("A tool for tts and asr.", "一个用于文本转语音和语音转文本的工具。"),
    tools=(
        tool(
            "asr",
            "Speech To Text",
            "语音转文字",
            "Convert audio file to text.",
            [
                param(
                    "audio_file",
                    "file",
                    required=True,
                    en="Audio File",
                    zh="音频文件",
                    llm="The audio file to be converted.",
                )
            ],
        ),
        tool(
            "tts",
            "Text To Speech",
            "文字转语音",
            "Convert text to audio file.",
            [
                param("text", "string", required=True, en="Text", zh="文本", llm="The text to be converted."),
                param("voice", "string", form="form", en="Voice", zh="声音"),
            ],
        ),
    ),
)


class AudioTools:
    declaration = DECLARATION

    def __init__(self, host: ToolHost) -> None:
        self._host = host

    async def invoke(
        self, tool_name: str, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        try:
            if tool_name == "asr":
                yield TextMessage(await self._asr(parameters, call))
            elif tool_name == "tts":
                yield await self._tts(parameters)
            else:
                raise ToolError(f"The audio provider has no tool {tool_name!r}")
        except OpenifyError as exc:
            raise exc if isinstance(exc, ToolError) else ToolError(exc.message if not str(exc) else str(exc)) from exc

    async def _asr(self, parameters: Mapping[str, Any], call: ToolCall) -> str:
        file = parameters.get("audio_file")
        if isinstance(file, list):
            file = file[0] if file else None
        if not isinstance(file, Mapping):
            raise ToolError("Please provide an audio file")
        data = await self._host.read_file(file, call)
        name = str(file.get("filename") or "audio.mp3")
        mime = str(file.get("mime_type") or "audio/mpeg")
        model = self._host.models.speech_to_text()
        return await asyncio.to_thread(model.transcribe, data, name, mime)

    async def _tts(self, parameters: Mapping[str, Any]) -> FileMessage:
        text = str(parameters.get("text") or "").strip()
        if not text:
            raise ToolError("Please provide the text to speak")
        model = self._host.models.text_to_speech()
        voice = str(parameters.get("voice") or "") or next(iter(model.voices()), "")
        audio = await asyncio.to_thread(model.speak, text, voice)
        return FileMessage(mime_type="audio/mpeg", filename="speech.mp3", data=audio)
