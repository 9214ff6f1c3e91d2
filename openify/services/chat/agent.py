"""Agent-chat turns: the model calls tools by function calling, or by ReAct prompting for models without it.
Each step is an `agent_thought` (sent when it starts and again when it is filled in), text is `agent_message`."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openify.providers.base import (
    LLM,
    ChatMessage,
    LLMRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageReport,
)
from openify.services.chat.config import AgentTool, AppConfig
from openify.services.chat.events import AgentMessageDelta, AgentThought
from openify.services.chat.generation import Generation, thought_record
from openify.services.tools import PROVIDER_TYPES
from openify.storage.tables import App
from openify.storage.tables.base import new_id
from openify.tools.base import (
    FileMessage,
    JsonMessage,
    LinkMessage,
    ResolvedTool,
    TextMessage,
    ToolNotFound,
    ToolRef,
)
from openify.tools.base import ToolCall as SourceToolCall

if TYPE_CHECKING:
    from openify.services.chat.service import ChatService, TurnRequest

log = logging.getLogger("openify.chat.agent")

KNOWLEDGE_TOOL = "dataset_retrieval"
_REACT_INSTRUCTIONS = """Respond to the human as helpfully and accurately as possible.

{instruction}

You have access to the following tools:

{tools}

Use a json blob to specify a tool by providing an action key (tool name) and an action_input key (tool input).
Valid "action" values: "Final Answer" or {tool_names}

Provide only ONE action per $JSON_BLOB, as shown:

```
{{
  "action": $TOOL_NAME,
  "action_input": $ACTION_INPUT
}}
```

Follow this format:

Question: input question to answer
Thought: consider previous and subsequent steps
Action:
```
$JSON_BLOB
```
Observation: action result
... (repeat Thought/Action/Observation N times)
Thought: I know what to respond
Action:
```
{{
  "action": "Final Answer",
  "action_input": "Final response to human"
}}
```

Begin! Reminder to ALWAYS respond with a valid json blob of a single action. Use tools if necessary. Respond directly if appropriate. Format is Action:```$JSON_BLOB```then Observation:.
"""  # noqa: E501 - Dify's ReAct prompt, kept as the models were tuned on it
_ACTION_START = re.compile(r"\{\s*\"action\"")


def _action_json(output: str) -> tuple[str, int] | None:
    """The action blob of a ReAct answer and where it starts: a fenced `{...}` first, else a bare `{"action" ...}`
    to the last `}`. Scans, where the regexes doing this were quadratic on a reply of many fences or braces."""
    fences = [m.start() for m in re.finditer("```", output)]
    for at, end in itertools.pairwise(fences):
        inner = output[at + 3 : end]
        inner = (inner[4:] if inner.startswith("json") else inner).strip()
        if inner.startswith("{") and inner.endswith("}"):
            return inner, at
    bare = _ACTION_START.search(output)
    close = output.rfind("}")
    if bare is not None and close > bare.start():
        return output[bare.start() : close + 1], bare.start()
    return None


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    label: str
    description: str
    parameters: Mapping[str, Any]
    fixed: Mapping[str, Any]  # parameters the app set (non-empty); the model fills the rest
    impl: Any  # a ResolvedTool of a tool source, an agent Tool of `registries.tools`, or None (knowledge)


class AgentRunner:
    def __init__(
        self, chat: ChatService, app: App, cfg: AppConfig, llm: LLM, gen: Generation, req: TurnRequest
    ) -> None:
        self._app = app
        self._chat, self._cfg, self._llm, self._gen, self._req = chat, cfg, llm, gen, req
        self.usage = Usage()
        self._thoughts: dict[str, AgentThought] = {}
        self._tools: dict[str, _Tool] = {}

    def records(self) -> list[dict[str, Any]]:
        return [thought_record(t, self._gen.message_id, self._gen.created_at) for t in self._thoughts.values()]

    async def _source_tool(self, entry: AgentTool) -> _Tool | None:
        """The entry's tool from the tool sources (builtin, Dify plugins, MCP, ...): its llm-form parameters
        are the function schema, the values the app set (its form parameters) are fixed."""
        manager = self._chat.tools
        if manager is None:
            return None
        ref = ToolRef(entry.provider_type, entry.provider_id, entry.tool_name)  # type: ignore[arg-type]  # below
        try:
            if entry.provider_type not in PROVIDER_TYPES:
                raise ToolNotFound(f"unknown tool provider type {entry.provider_type!r}")
            resolved = await manager.resolve(ref)
        except ToolNotFound as exc:
            log.info("agent tool %s/%s: %s", entry.provider_id, entry.tool_name, exc)
            return None
        declared = resolved.tool
        fixed = {k: v for k, v in entry.parameters.items() if v not in (None, "")}
        for p in declared.parameters:  # form parameters the app left empty take their defaults, as in Dify
            if p.form == "form" and p.name not in fixed and p.default not in (None, ""):
                fixed[p.name] = p.default
        label = entry.tool_label or declared.label.get("en_US") or declared.name
        return _Tool(
            declared.name, label, declared.description or declared.name, declared.llm_schema(), fixed, resolved
        )

    async def _load_tools(self) -> dict[str, _Tool]:
        tools: dict[str, _Tool] = {}
        registry = self._chat.registries.tools
        for entry in self._cfg.agent_tools:
            found = await self._source_tool(entry)
            if found is not None:
                tools[found.name] = found
                continue
            # The agent app's own small tools, named by tool name, from before tool sources existed.
            factory = registry.find(entry.tool_name)
            if factory is None:
                log.warning(
                    "agent tool %s/%s is not available here (no source has it); skipped",
                    entry.provider_id,
                    entry.tool_name,
                )
                continue
            impl = factory(self._chat.settings)
            fixed = {k: v for k, v in entry.parameters.items() if v not in (None, "")}
            tools[impl.name] = _Tool(
                impl.name, entry.tool_label or impl.label, impl.description, impl.parameters, fixed, impl
            )
        if self._cfg.dataset_ids and self._chat.knowledge is not None:
            tools[KNOWLEDGE_TOOL] = _Tool(
                KNOWLEDGE_TOOL,
                "Knowledge Retrieval",
                "Search the app's knowledge bases for passages relevant to a query.",
                {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "what to look up"}},
                    "required": ["query"],
                },
                {},
                None,
            )
        return tools

    def _specs(self) -> list[ToolSpec]:
        specs = []
        for t in self._tools.values():
            props = {k: v for k, v in (t.parameters.get("properties") or {}).items() if k not in t.fixed}
            required = [r for r in t.parameters.get("required") or [] if r not in t.fixed]
            specs.append(ToolSpec(t.name, t.description, {**t.parameters, "properties": props, "required": required}))
        return specs

    def _thought(self, t: AgentThought) -> None:
        self._thoughts[t.id] = t
        self._gen.emit(t)

    def _add_usage(self, u: Usage) -> None:
        s = self.usage
        self.usage = Usage(
            prompt_tokens=s.prompt_tokens + u.prompt_tokens,
            completion_tokens=s.completion_tokens + u.completion_tokens,
            prompt_unit_price=u.prompt_unit_price,
            completion_unit_price=u.completion_unit_price,
            price_unit=u.price_unit,
            currency=u.currency,
            latency=s.latency + u.latency,
            time_to_first_token=s.time_to_first_token if s.time_to_first_token is not None else u.time_to_first_token,
            time_to_generate=(s.time_to_generate or 0) + (u.time_to_generate or 0),
        )

    async def _call(self, name: str, arguments: Mapping[str, Any]) -> str:
        tool = self._tools.get(name)
        if tool is None:
            return f"there is no tool named {name}"
        args = {**arguments, **tool.fixed}
        try:
            if tool.impl is None:  # the knowledge tool
                found = await self._chat.retrieve(
                    self._app, self._cfg, str(args.get("query") or self._req.query), self._gen.end_user_id
                )
                return "\n".join(str(r.get("content") or "") for r in found) or "no relevant passages found"
            if isinstance(tool.impl, ResolvedTool):
                return await self._invoke_source_tool(tool.impl, args)
            return str(await tool.impl.invoke(args))
        except Exception as exc:  # a failing tool is an observation for the model, not the end of the turn
            log.info("tool %s failed: %s", name, exc)
            return f"tool invoke error: {exc}"

    async def _invoke_source_tool(self, tool: ResolvedTool, args: Mapping[str, Any]) -> str:
        """The tool's messages as one observation, worded as Dify's ToolEngine words them for the model."""
        manager = self._chat.tools
        assert manager is not None  # noqa: S101 - a ResolvedTool only comes from it
        call = SourceToolCall(
            user_id=self._gen.end_user_id,
            app_id=self._app.id,
            conversation_id=self._gen.conversation_id,
            message_id=self._gen.message_id,
        )
        parts: list[str] = []
        async for message in manager.invoke(tool, args, call):
            match message:
                case TextMessage(text=text):
                    parts.append(text)
                case LinkMessage(url=url):
                    parts.append(f"result link: {url}. please tell user to check it.")
                case JsonMessage(data=data):
                    parts.append(_dumps(data))
                case FileMessage():
                    parts.append(
                        "image has been created and sent to user already, you do not need to create it, "
                        "just tell the user to check it now."
                        if message.mime_type.startswith("image/")
                        else f"file {message.filename or message.url} has been created and sent to user already."
                    )
                case _:
                    pass
        return "".join(parts)

    async def run(self, messages: Sequence[ChatMessage]) -> None:
        self._tools = await self._load_tools()
        if self._cfg.agent_strategy == "function_call" and self._llm.supports_tools and self._tools:
            await self._function_calling(list(messages))
        else:
            await self._react(list(messages))

    # --- function calling -----------------------------------------------------------------------------------
    async def _function_calling(self, messages: list[ChatMessage]) -> None:
        cfg, specs = self._cfg, self._specs()
        for iteration in range(cfg.agent_max_iteration):
            step = AgentThought(new_id(), len(self._thoughts) + 1, "", "", "", {}, "", ())
            self._thought(step)
            last = iteration == cfg.agent_max_iteration - 1  # the last round may not call tools: it must answer
            request = LLMRequest(
                model=cfg.model.name,
                messages=messages,
                params=cfg.model.params,
                stop=cfg.model.stop,
                tools=() if last else specs,
            )
            text: list[str] = []
            calls: list[ToolCall] = []
            async for event in self._llm.stream(request):
                if isinstance(event, TextDelta) and event.text:
                    text.append(event.text)
                    self._gen.emit(AgentMessageDelta(event.text))
                elif isinstance(event, ToolCallDelta):
                    calls.append(event.call)
                elif isinstance(event, UsageReport):
                    self._add_usage(event.usage)
            thought = "".join(text)
            if not calls:
                self._thought(_replace(step, thought=thought))
                return
            parsed = {c.name: _arguments(c.arguments) for c in calls}
            called = _replace(
                step,
                thought=thought,
                tool=";".join(parsed),
                tool_input=_dumps(parsed),
                tool_labels=self._labels(parsed),
            )
            self._thought(called)
            observations = {c.name: await self._call(c.name, _arguments(c.arguments)) for c in calls}
            self._thought(_replace(called, observation=_dumps(observations)))
            messages.append(ChatMessage("assistant", thought, tool_calls=calls))
            messages.extend(ChatMessage("tool", observations[c.name], tool_call_id=c.id, name=c.name) for c in calls)

    def _labels(self, names: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for n in names:
            label = self._tools[n].label if n in self._tools else n
            out[n] = {"en_US": label, "zh_Hans": label}
        return out

    # --- ReAct ----------------------------------------------------------------------------------------------
    async def _react(self, messages: list[ChatMessage]) -> None:
        cfg = self._cfg
        system = next((m.content for m in messages if m.role == "system" and isinstance(m.content, str)), "")
        rest = [m for m in messages if m.role != "system"]
        tools_text = (
            "\n".join(
                f"{t.name}: {t.description}, args: {_dumps(s.parameters.get('properties') or {})}"
                for t, s in zip(self._tools.values(), self._specs(), strict=True)
            )
            or "(no tools)"
        )
        instructions = _REACT_INSTRUCTIONS.format(
            instruction=system, tools=tools_text, tool_names=", ".join(f'"{n}"' for n in self._tools) or '""'
        )
        query = rest[-1] if rest else ChatMessage("user", self._req.query)
        scratchpad = ""
        for _ in range(cfg.agent_max_iteration):
            step = AgentThought(new_id(), len(self._thoughts) + 1, "", "", "", {}, "", ())
            self._thought(step)
            prompt = [ChatMessage("system", instructions), *rest[:-1], query]
            if scratchpad:
                prompt.append(ChatMessage("assistant", scratchpad))
            request = LLMRequest(
                model=cfg.model.name, messages=prompt, params=cfg.model.params, stop=(*cfg.model.stop, "Observation")
            )
            chunks: list[str] = []
            async for event in self._llm.stream(request):
                if isinstance(event, TextDelta):
                    chunks.append(event.text)
                elif isinstance(event, UsageReport):
                    self._add_usage(event.usage)
            output = "".join(chunks)
            thought, action, action_input = _parse_react(output)
            if action is None or action.lower() in ("final answer", "final_answer"):
                answer = (
                    action_input
                    if isinstance(action_input, str) and action is not None
                    else (json.dumps(action_input, ensure_ascii=False) if action is not None else output.strip())
                )
                self._gen.emit(AgentMessageDelta(answer))
                self._thought(_replace(step, thought=thought or answer))
                return
            if thought:
                self._gen.emit(AgentMessageDelta(thought))
            args = action_input if isinstance(action_input, dict) else {"query": action_input}
            labels = self._labels({action: args})
            self._thought(
                _replace(step, thought=thought, tool=action, tool_input=_dumps({action: args}), tool_labels=labels)
            )
            observation = await self._call(action, args)
            self._thought(
                _replace(
                    step,
                    thought=thought,
                    tool=action,
                    tool_input=_dumps({action: args}),
                    tool_labels=labels,
                    observation=_dumps({action: observation}),
                )
            )
            scratchpad += f"{output.strip()}\nObservation: {observation}\n"
        self._gen.emit(AgentMessageDelta("Sorry, I could not finish within the allowed number of steps."))


def _replace(t: AgentThought, **fields: Any) -> AgentThought:
    values = {
        "id": t.id,
        "position": t.position,
        "thought": t.thought,
        "observation": t.observation,
        "tool": t.tool,
        "tool_labels": t.tool_labels,
        "tool_input": t.tool_input,
        "message_files": t.message_files,
        **fields,
    }
    return AgentThought(**values)


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {"input": text}
    return value if isinstance(value, dict) else {"input": value}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _parse_react(output: str) -> tuple[str, str | None, Any]:
    """(thought, action, action_input) of a ReAct answer; no action block means the text is the answer."""
    match = _action_json(output)
    thought = output
    if "Thought:" in thought:
        thought = thought.split("Thought:", 1)[1]
    thought = thought.split("Action:", 1)[0].strip()
    if match is None:
        return thought, None, None
    try:
        blob = json.loads(match[0])
    except (ValueError, RecursionError):
        return thought, None, None
    if not isinstance(blob, dict) or "action" not in blob:
        return thought, None, None
    return thought if match[1] > 0 else "", str(blob["action"]), blob.get("action_input")
