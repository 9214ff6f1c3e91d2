# mypy: ignore-errors
# A Dify plugin (Python >= 3.12, the dify_plugin SDK): it runs in its own venv, never in Openify's interpreter.
"""One tool, many actions: each uses one backwards invocation of the host (a test plugin of Openify)."""

import json
import os
import time
from collections.abc import Generator
from typing import Any

import requests
from dify_plugin import Tool
from dify_plugin.entities.model.llm import LLMModelConfig
from dify_plugin.entities.model.message import PromptMessageTool, UserPromptMessage
from dify_plugin.entities.model.rerank import RerankModelConfig
from dify_plugin.entities.model.text_embedding import TextEmbeddingModelConfig
from dify_plugin.entities.tool import ToolInvokeMessage, ToolProviderType


class ProbeTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        action = tool_parameters["action"]
        args = json.loads(tool_parameters.get("args") or "{}")
        yield from getattr(self, f"_{action}")(args)

    def _echo(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        yield self.create_text_message(args.get("text", ""))

    def _llm(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        config = LLMModelConfig(provider=args["provider"], model=args["model"], mode="chat", completion_params={})
        tools = [
            PromptMessageTool(name=t, description=f"the {t} tool", parameters={"type": "object", "properties": {}})
            for t in args.get("tools", [])
        ]
        text, calls, usage = [], [], None
        for chunk in self.session.model.llm.invoke(
            model_config=config, prompt_messages=[UserPromptMessage(content=args["query"])], tools=tools, stream=True
        ):
            text.append(chunk.delta.message.content or "")
            calls += [c.function.name for c in chunk.delta.message.tool_calls]
            if chunk.delta.usage is not None:
                usage = chunk.delta.usage
        yield self.create_json_message(
            {
                "text": "".join(text),
                "tool_calls": calls,
                "total_tokens": usage.total_tokens if usage else None,
                "currency": usage.currency if usage else None,
            }
        )

    def _embed(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        config = TextEmbeddingModelConfig(provider=args.get("provider", ""), model=args.get("model", ""))
        result = self.session.model.text_embedding.invoke(model_config=config, texts=args["texts"])
        yield self.create_json_message({"count": len(result.embeddings), "dims": len(result.embeddings[0])})

    def _rerank(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        config = RerankModelConfig(provider=args["provider"], model=args["model"], score_threshold=0.0, top_n=10)
        result = self.session.model.rerank.invoke(model_config=config, docs=args["docs"], query=args["query"])
        yield self.create_json_message({"order": [d.index for d in result.docs]})

    def _tool(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        for message in self.session.tool.invoke(
            ToolProviderType.BUILT_IN, args["provider"], args["tool"], args["parameters"]
        ):
            if message.type == ToolInvokeMessage.MessageType.TEXT:
                yield self.create_text_message(f"inner: {message.message.text}")

    def _app(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        result = self.session.app.workflow.invoke(
            app_id=args["app_id"], inputs=args["inputs"], response_mode="blocking"
        )
        yield self.create_json_message(result)

    def _storage(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        storage = self.session.storage
        before = storage.exist(args["key"])
        storage.set(args["key"], args["value"].encode())
        value = storage.get(args["key"]).decode()
        if args.get("delete"):
            storage.delete(args["key"])
        yield self.create_json_message({"existed": before, "value": value, "after": storage.exist(args["key"])})

    def _file(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        content = args["content"].encode()
        uploaded = self.session.file.upload(args["filename"], content, args["mime_type"])
        url = uploaded.preview_url
        downloaded = requests.get(url, timeout=10).content if url else b""
        yield self.create_json_message(
            {"id": uploaded.id, "name": uploaded.name, "size": uploaded.size, "same": downloaded == content}
        )

    def _sleep(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        time.sleep(float(args.get("seconds", 1)))
        yield self.create_text_message(f"slept {args.get('tag', '')}")

    def _crash(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        os._exit(3)
        yield self.create_text_message("unreachable")

    def _credentials(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        yield self.create_json_message({"api_key": self.runtime.credentials.get("api_key")})

    def _environment(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        yield self.create_json_message({"env": sorted(os.environ), "cwd": os.getcwd(), "home": os.environ.get("HOME")})  # noqa: TID251 - the probe reports what a plugin process is given

    def _read(self, args: dict) -> Generator[ToolInvokeMessage, None, None]:
        try:
            with open(args["path"], "rb") as f:
                yield self.create_json_message({"read": len(f.read())})
        except OSError as e:
            yield self.create_json_message({"error": type(e).__name__})
