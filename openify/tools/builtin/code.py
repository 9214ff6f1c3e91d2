"""Dify's builtin `code` provider (`simple_code`): run a snippet in the code sandbox and answer its output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from openify.security.sandbox import Sandbox
from openify.settings import Settings
from openify.tools.base import TextMessage, ToolCall, ToolError, ToolMessage, ToolProviderDeclaration
from openify.tools.builtin.declarations import label, param, tool

DECLARATION = ToolProviderDeclaration(
    provider_type="builtin",
    id="code",
    name="code",
    label=label("Code Interpreter", "代码解释器"),
    description=label("Run a piece of code and get the result back.", "运行一段代码并返回结果。"),
    tools=(
        tool(
            "simple_code",
            "Code Interpreter",
            "代码解释器",
            "run code and get the result back. When you're using a lower quality model, please make sure there are "
            "some tips help LLM to understand how to write the code.",
            [
                param(
                    "language",
                    "string",
                    required=True,
                    en="Language",
                    zh="语言",
                    llm="language of the code, only 'python3' and 'javascript' are supported",
                ),
                param("code", "string", required=True, en="Code", zh="代码", llm="code to be executed"),
            ],
        ),
    ),
)

# The sandbox calls `main(**inputs)`; Dify's simple_code answers what the snippet prints, so the snippet runs
# inside a main that captures its output.
_PYTHON = """
def main(source):
    import contextlib, io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<code>", "exec"), {"__name__": "__main__"})
    return {"stdout": out.getvalue()}
"""
_JAVASCRIPT = """
function main({source}) {
  const lines = [];
  const log = console.log;
  console.log = (...a) => lines.push(a.map(x => typeof x === "string" ? x : JSON.stringify(x)).join(" "));
  try { new Function(source)(); } finally { console.log = log; }
  return {stdout: lines.length ? lines.join("\\n") + "\\n" : ""};
}
"""


class CodeTools:
    declaration = DECLARATION

    def __init__(self, settings: Settings) -> None:
        self._sandbox = Sandbox(settings.sandbox)

    async def invoke(
        self, _tool_name: str, parameters: Mapping[str, Any], _call: ToolCall
    ) -> AsyncIterator[ToolMessage]:
        language = str(parameters.get("language") or "")
        if language not in ("python3", "javascript"):
            raise ToolError("Only python3 and javascript are supported")
        try:
            if language == "python3":
                result = await self._sandbox.arun("python3", _PYTHON, {"source": str(parameters.get("code") or "")})
            else:
                result = await self._sandbox.arun(
                    "javascript", _JAVASCRIPT, {"source": str(parameters.get("code") or "")}
                )
        except Exception as exc:  # the snippet's error is the tool's error
            raise ToolError(str(exc) or type(exc).__name__) from exc
        stdout = result.get("stdout")
        yield TextMessage(stdout if isinstance(stdout, str) else json.dumps(stdout, ensure_ascii=False))
