"""The server side of `ToolHost` for Dify plugins' backwards invocations: tools through the tool manager,
apps through the workflow service, files through the workflow file store and its signed links."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from openify.errors import BadRequest
from openify.services.tools import ServerToolHost
from openify.tools.base import ToolCall, ToolMessage, ToolRef

if TYPE_CHECKING:
    from openify.services.container import Services


class PluginToolHost(ServerToolHost):
    """`ServerToolHost` plus what Dify plugins call back for."""

    def __init__(self, services: Services) -> None:
        super().__init__(services.models, services.workflows.files.read)
        self._services = services

    async def invoke_tool(
        self, ref: ToolRef, parameters: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        async for message in self._services.tools.call(ref, parameters, call):
            yield message

    async def invoke_app(
        self, app_id: str, request: Mapping[str, Any], call: ToolCall
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Workflow apps, in blocking mode (a streamed request is answered with the one final body)."""
        app = await asyncio.to_thread(self._services.apps.get, app_id)
        if app.mode != "workflow":
            raise BadRequest(f"app {app_id} is a {app.mode} app; plugins may invoke workflow apps here")
        workflows = self._services.workflows
        end_user = await workflows.end_user(app.id, call.user_id)
        live = await workflows.start(app, end_user, dict(request.get("inputs") or {}), files=request.get("files") or [])
        done = await live.wait()
        yield {
            "task_id": live.task_id,
            "workflow_run_id": live.run_id,
            "data": {
                "id": live.run_id,
                "status": done.status,
                "outputs": dict(done.outputs),
                "error": done.error,
                "elapsed_time": done.elapsed_time,
                "total_tokens": done.total_tokens,
                "total_steps": done.total_steps,
                "created_at": done.created_at,
                "finished_at": done.finished_at,
            },
        }

    async def save_tool_file(self, data: bytes, filename: str, mime_type: str) -> Mapping[str, Any]:
        return await self._services.workflows.files.save(data, filename, mime_type)

    def tool_file_upload_url(self, upload_id: str) -> str:
        base = self._services.settings.files_url.rstrip("/")
        if not base:
            return ""
        # The signature of a tool-file link over the upload id: what the upload route checks.
        signed = self._services.file_links.tool_file(upload_id, "").split("?", 1)[1]
        return f"{base}/files/dify-plugins/upload/{upload_id}?{signed}"
