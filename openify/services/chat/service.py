"""Chat and completion apps: start a turn (checked and stored before the first byte), run it as a task, name new
conversations off the hot path, suggest follow-up questions."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from openify.errors import AppUnavailable, BadRequest, InvalidParam, NotChatApp
from openify.providers.base import (
    LLM,
    ChatMessage,
    LLMRequest,
    ModelResolver,
    TextDelta,
    Usage,
    UsageReport,
    context_size,
)
from openify.registry import Registries
from openify.services.annotations import AnnotationService, Reply
from openify.services.chat import moderation, prompts
from openify.services.chat.agent import AgentRunner
from openify.services.chat.config import AppConfig, parse
from openify.services.chat.conversations import ConversationService
from openify.services.chat.events import GenerationError, MessageDelta, MessageEnd, MessageReplace
from openify.services.chat.files import FileService, RequestFiles
from openify.services.chat.generation import Generation, Outcome, StopRegistry, as_error, monotonic, thought_record
from openify.services.chat.messages import MessageService, Turn
from openify.services.end_users import EndUserService
from openify.services.tools import ToolManager
from openify.settings import Settings
from openify.storage.db import Database
from openify.storage.tables import App, Conversation
from openify.storage.tables.base import new_id
from openify.tokens import count_tokens

log = logging.getLogger("openify.chat")

T = TypeVar("T")
CHAT_MODES = ("chat", "agent-chat")
_TITLE_PROMPT = (
    'You need to decompose the user\'s input into "subject" and "intention" in order to accurately figure out '
    "what the user's input language actually is.\nNotice: the language type user uses could be diverse, which can "
    "be English, Chinese, Italian, Español, Arabic, Japanese, French, and etc.\nMAKE SURE your output is the SAME "
    "language as the user's input!\nYour output is restricted only to: (Input language) Intention + Subject(short "
    "as possible)\nYour output MUST be a valid JSON.\n\nTip: When the user's question is directed at you (the "
    "language model), you can add an emoji to make it more fun.\n\nexample 1:\nUser Input: hi, yesterday i had "
    'some burgers.\n{\n  "Language Type": "The user\'s input is pure English",\n  "Your Reasoning": "The '
    'language of my output must be pure English.",\n  "Your Output": "sharing yesterday\'s food"\n}\n\n'
    "User Input: "
)
_SUGGEST_PROMPT = (
    "Please help me predict the three most likely questions that human would ask, and keeping each question under "
    "20 characters.\nMAKE SURE your output is the SAME language as the Assistant's latest response. The output "
    'must be an array in JSON format following the specified schema:\n["question1","question2","question3"]\n'
)


def _outermost(text: str, opening: str, closing: str) -> str | None:
    """From the first `opening` to the last `closing` (what `\\{.*\\}` with DOTALL finds, without its quadratic
    backtracking on a reply of many braces and no closing one)."""
    start, end = text.find(opening), text.rfind(closing)
    return text[start : end + 1] if start != -1 and end > start else None


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One call of /chat-messages or /completion-messages, as the route parsed it."""

    user: str
    inputs: Mapping[str, Any]
    query: str
    conversation_id: str | None = None
    files: Sequence[Mapping[str, Any]] = ()
    auto_generate_name: bool = True
    streaming: bool = False
    history: Sequence[Turn] = ()  # earlier turns sent by the caller (the OpenAI face); a conversation's own win


@dataclass
class _Prepared:
    gen: Generation
    history: list[Turn]
    files: RequestFiles
    name_conversation: bool


class ChatService:
    """The generation pipeline of easy-UI apps (chat, agent-chat, completion)."""

    def __init__(
        self,
        db: Database,
        models: ModelResolver,
        registries: Registries,
        end_users: EndUserService,
        conversations: ConversationService,
        messages: MessageService,
        files: FileService,
        settings: Settings,
    ) -> None:
        self._db, self._models, self.registries, self.settings = db, models, registries, settings
        self._end_users, self.conversations, self.messages, self.files = end_users, conversations, messages, files
        self.running = StopRegistry()
        self.knowledge: Any = None  # set by the container when the knowledge service exists
        self.tools: ToolManager | None = None  # set by the container: agent apps' tools from every tool source
        self.annotations: AnnotationService | None = None  # set by the container
        self._configs: dict[tuple[str, Any], AppConfig] = {}
        # SQLite has one writer: writes queue on one thread instead of sleeping in SQLite's busy handler.
        self._writer = ThreadPoolExecutor(1, "openify-chat-writer") if db.is_sqlite else None
        self._users: dict[tuple[str, str], str] = {}

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a database write off the event loop (on the one writer thread with SQLite)."""
        if self._writer is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._writer, partial(fn, *args, **kwargs))

    # --- lookups, cached: app configs change only with the app row; end users are never renamed -------------
    def config(self, app: App) -> AppConfig:
        key = (app.id, app.updated_at)
        cfg = self._configs.get(key)
        if cfg is None:
            if len(self._configs) > 1000:
                self._configs.clear()
            cfg = self._configs[key] = parse(app)
        return cfg

    def end_user_id(self, app_id: str, user: str) -> str:
        key = (app_id, user)
        found = self._users.get(key)
        if found is None:
            if len(self._users) > 100_000:
                self._users.clear()
            found = self._users[key] = self._end_users.get_or_create(app_id, user).id
        return found

    def find_end_user_id(self, app_id: str, user: str | None) -> str | None:
        """The end user of `user` without creating one (reads by a user who never wrote find nothing)."""
        if not user:
            user = "DEFAULT-USER"
        found = self._users.get((app_id, user))
        if found is None:
            row = self._end_users.find(app_id, user)
            if row is None:
                return None
            found = self._users[(app_id, user)] = row.id
        return found

    def llm_of(self, cfg: AppConfig) -> LLM:
        return self._models.llm(cfg.model.provider, cfg.model.name)

    # --- a turn ----------------------------------------------------------------------------------------------
    async def start(self, app: App, req: TurnRequest) -> Generation:
        """Check everything, store the conversation and running message, and start the model task."""
        completion = app.mode == "completion"
        if not completion and app.mode not in CHAT_MODES:
            raise NotChatApp()
        cfg = self.config(app)
        if not completion and not req.query.strip():
            raise InvalidParam("query is required", params="query")
        inputs = cfg.check_inputs(req.inputs)
        if completion and cfg.dataset_ids and cfg.dataset_query_variable and not inputs.get(cfg.dataset_query_variable):
            raise InvalidParam(f"{cfg.dataset_query_variable} is required in input form")
        llm = self.llm_of(cfg)
        # Dify checks this in its runner and answers 400; here before anything is stored or streamed.
        await asyncio.to_thread(prompts.check_prompt_fits, cfg, inputs, req.query, context_size(llm))
        prep = await self.write(self._prepare, app, cfg, req, inputs)
        if req.files and prep.files.images and not llm.supports_vision:
            log.info("model %s has no vision: images sent as file records only", cfg.model.name)
        self.running.start(prep.gen, lambda gen: self._run(gen, app, cfg, llm, req, inputs, prep))
        return prep.gen

    def _prepare(self, app: App, cfg: AppConfig, req: TurnRequest, inputs: dict[str, Any]) -> _Prepared:
        end_user_id = self.end_user_id(app.id, req.user)
        files = (
            self.files.resolve(app.id, end_user_id, req.files, vision=cfg.image_upload, detail=cfg.image_detail)
            if req.files
            else RequestFiles([], [], [])
        )
        if req.files and not cfg.image_upload and any(f.get("type") == "image" for f in req.files):
            files = RequestFiles(files.records, [], files.upload_ids)
        if len(files.records) > max(cfg.file_number_limit, 1) and cfg.image_upload:
            raise InvalidParam(f"Number of files exceeds the limit of {cfg.file_number_limit}.", params="files")
        history: list[Turn] = list(req.history)
        new = not req.conversation_id
        if new and not files.upload_ids:  # the common first turn: two Core inserts, no ORM session
            name = "" if app.mode == "completion" else _initial_name(req.query)
            conv = ConversationService.new(app.id, end_user_id, app.mode, inputs, name)
            conv.dialogue_count = 1
            msg = MessageService.new(conv, req.query, inputs, files.records)
            with self._db.engine.begin() as c:
                _insert(c, conv)
                _insert(c, msg)
        else:
            with self._db.session() as s:
                if req.conversation_id:
                    conv = ConversationService.get_in(s, app.id, end_user_id, req.conversation_id)
                    if conv.status != "normal":
                        raise InvalidParam("Conversation is not normal.")
                    history = MessageService.history_in(s, conv.id)
                else:
                    name = "" if app.mode == "completion" else _initial_name(req.query)
                    conv = ConversationService.new(app.id, end_user_id, app.mode, inputs, name)
                    conv.dialogue_count = 1
                    _insert(s, conv)
                msg = MessageService.new(conv, req.query, inputs, files.records)
                _insert(s, msg)
                if not new:
                    MessageService.bump(s, conv.id, msg.created_at)
                if files.upload_ids:
                    self.files.mark_used(s, files.upload_ids)
        gen = Generation(
            task_id=new_id(),
            message_id=msg.id,
            conversation_id=conv.id,
            app_id=app.id,
            end_user_id=end_user_id,
            mode=app.mode,
            created_at=_unix(msg.created_at),
        )
        naming = new and req.auto_generate_name and app.mode != "completion"
        return _Prepared(gen, history, files, naming)

    async def _run(
        self,
        gen: Generation,
        app: App,
        cfg: AppConfig,
        llm: LLM,
        req: TurnRequest,
        inputs: dict[str, Any],
        prep: _Prepared,
    ) -> None:
        usage, resources, thoughts = Usage(), [], []
        status, error = "normal", None
        started = monotonic()
        try:
            mod = cfg.moderation
            texts = (req.query, *(v for v in inputs.values() if isinstance(v, str)))
            flagged = mod.input_preset is not None and await moderation.flagged(mod, self._models, *texts)
            reply = None if flagged else await self._annotation_reply(app, req.query)
            if reply is not None:
                await self._answer_with_annotation(gen, reply, prep)
                if prep.name_conversation:
                    try:  # the answer is stored and sent: a title that fails keeps the initial name
                        await self._auto_name(cfg, llm, gen.conversation_id, req.query)
                    except Exception:
                        log.warning("naming conversation %s failed", gen.conversation_id, exc_info=True)
                return
            resources = await self._retrieve(app, cfg, gen, req, inputs)
            context = "\n".join(str(r.get("content") or "") for r in resources) or None
            messages = prompts.build_messages(
                cfg,
                inputs,
                req.query,
                prep.history,
                context,
                prep.files.images,
                context_size=context_size(llm),
            )
            if flagged and mod.input_preset is not None:
                # Dify answers a flagged input with the preset, one character per message event, without the model.
                for char in mod.input_preset:
                    gen.emit(MessageDelta(char))
                stopped = False
            elif cfg.agent_enabled and gen.mode == "agent-chat":
                runner = AgentRunner(self, app, cfg, llm, gen, req)
                stopped = await gen.guard(runner.run(messages))
                usage, thoughts = runner.usage, runner.records()
            else:
                holder: list[Usage] = []
                stopped = await gen.guard(self._stream_answer(gen, cfg, llm, messages, holder))
                usage = holder[0] if holder else _estimate(messages, "".join(gen.answer), started)
            if stopped:
                usage = _estimate_stopped(usage, messages, "".join(gen.answer), started)
        except Exception as exc:
            err = as_error(exc)
            status, error = "error", err.detail
            await self.write(
                self.messages.complete,
                gen.message_id,
                answer="".join(gen.answer),
                status=status,
                error=error,
                usage=usage,
                retriever_resources=resources,
                agent_thoughts=thoughts,
            )
            gen.emit(GenerationError(err))
            gen.close()
            return
        answer = "".join(gen.answer)
        mod = cfg.moderation
        # The input preset is the app's own text: output moderation checks model answers only.
        if not flagged and await moderation.output_flagged(mod, self._models, answer):
            answer = mod.output_preset
            gen.answer[:] = [answer]
            gen.emit(MessageReplace(answer))
        await self.write(
            self.messages.complete,
            gen.message_id,
            answer=answer,
            status=status,
            usage=usage,
            retriever_resources=resources,
            agent_thoughts=thoughts,
        )
        shown = _wire_resources(resources) if cfg.retriever_resource else []
        files = [_end_file(f, self.files.url(f)) for f in prep.files.records] or None
        gen.emit(MessageEnd(usage, shown, files))
        gen.close()
        if prep.name_conversation and answer:
            await self._auto_name(cfg, llm, gen.conversation_id, req.query)

    async def _annotation_reply(self, app: App, query: str) -> Reply | None:
        """The annotation that answers `query` in a chat or agent-chat app with annotation reply on."""
        if self.annotations is None or app.mode == "completion":
            return None
        return await self.annotations.reply_for(app.id, query)

    async def _answer_with_annotation(self, gen: Generation, reply: Reply, prep: _Prepared) -> None:
        """Dify's direct output: the annotation's answer one character per message event, no model, no usage;
        message_end names the annotation. Dify's account is the annotation's author, "Dify user" when there is
        none; Openify has no accounts."""
        for char in reply.answer:
            gen.emit(MessageDelta(char))
        usage = Usage()
        await self.write(self.messages.complete, gen.message_id, answer=reply.answer, status="normal", usage=usage)
        files = [_end_file(f, self.files.url(f)) for f in prep.files.records] or None
        annotation = {"id": reply.annotation_id, "account": {"id": None, "name": "Dify user"}}
        gen.emit(MessageEnd(usage, [], files, annotation_reply=annotation))
        gen.close()

    async def _stream_answer(
        self, gen: Generation, cfg: AppConfig, llm: LLM, messages: list[ChatMessage], holder: list[Usage]
    ) -> None:
        request = LLMRequest(
            model=cfg.model.name,
            messages=messages,
            mode="completion" if cfg.model.mode == "completion" else "chat",
            params=cfg.model.params,
            stop=cfg.model.stop,
        )
        last_save = monotonic()
        async for event in llm.stream(request):
            if isinstance(event, TextDelta):
                if event.text:
                    gen.emit(MessageDelta(event.text))
                    if monotonic() - last_save > 2.0:  # stores as it goes, without a write per token
                        last_save = monotonic()
                        await self.write(self.messages.save_answer, gen.message_id, "".join(gen.answer))
            elif isinstance(event, UsageReport):
                holder.append(event.usage)

    async def _retrieve(
        self, app: App, cfg: AppConfig, gen: Generation, req: TurnRequest, inputs: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Retriever resources from the app's knowledge bases, when the knowledge service exists."""
        if not cfg.dataset_ids or self.knowledge is None or (cfg.agent_enabled and gen.mode == "agent-chat"):
            return []
        query = req.query or str(inputs.get(cfg.dataset_query_variable) or "")
        if not query:
            return []
        return await self.retrieve(app, cfg, query, gen.end_user_id)

    async def retrieve(self, app: App, cfg: AppConfig, query: str, end_user_id: str) -> list[dict[str, Any]]:
        """`knowledge.retrieve_for_app`, off the event loop: embedding and index search are blocking work."""
        fn = getattr(self.knowledge, "retrieve_for_app", None)
        if fn is None:
            return []
        result = await asyncio.to_thread(fn, app, query, dict(cfg.dataset_configs), end_user_id)
        if inspect.isawaitable(result):
            result = await result
        return [dict(r) for r in result or []]

    # --- naming and suggestions (off the hot path) -----------------------------------------------------------
    async def _auto_name(self, cfg: AppConfig, llm: LLM, conversation_id: str, query: str) -> None:
        name = await self.generate_name(cfg, llm, query)
        await self.write(self.conversations.set_name, conversation_id, name)

    async def name_new_conversation(self, app: App, conversation_id: str, query: str) -> None:
        """Title a new chatflow conversation as a chat app's is titled, with the first LLM node's model
        (Dify titles every new conversation with a model); without one the initial name stays."""
        model = _suggestion_model(app)
        if model is None:
            return
        try:
            llm = self._models.llm(*model)
        except Exception as exc:  # an unconfigured provider: keep the initial name
            log.info("conversation naming skipped: %s", exc)
            return
        name = await self._title(llm, model[1], query)
        await self.write(self.conversations.set_name, conversation_id, name)

    async def generate_name(self, cfg: AppConfig, llm: LLM, query: str) -> str:
        """A short title in the user's language; `query[:47]...` when the model gives none (as Dify)."""
        return await self._title(llm, cfg.model.name, query)

    async def _title(self, llm: LLM, model: str, query: str) -> str:
        text = query if len(query) <= 2000 else query[:300] + "..." + query[-300:]
        try:
            result = await llm.invoke(
                LLMRequest(
                    model=model,
                    messages=[ChatMessage("user", _TITLE_PROMPT + text + "\n")],
                    params={"max_tokens": 256, "temperature": 1},
                )
            )
            match = _outermost(result.text, "{", "}")
            name = str(json.loads(match)["Your Output"]).strip() if match else ""
        except Exception as exc:  # a title is a nicety: any failure keeps the fallback
            log.info("conversation naming failed: %s", exc)
            name = ""
        if not name:
            return query[:47] + "..." if len(query) > 47 else query
        return name[:75] + "..." if len(name) > 75 else name

    async def rename(self, app: App, user: str, conversation_id: str, name: str | None, auto: bool) -> Conversation:
        end_user_id = self.find_end_user_id(app.id, user)
        if end_user_id is None:
            raise _conversation_missing()
        if not auto:
            if not name or not name.strip():
                raise InvalidParam("name is required", params="name")
            return await asyncio.to_thread(
                self.conversations.rename, app.id, end_user_id, conversation_id, name.strip()
            )
        conv = await asyncio.to_thread(self.conversations.get, app.id, end_user_id, conversation_id)
        page = await asyncio.to_thread(self.messages.page, app.id, end_user_id, conversation_id, None, 100)
        if not page.items:
            raise InvalidParam("The conversation has no messages yet.")
        first_query = page.items[0][0].query
        cfg = self.config(app)
        title = await self.generate_name(cfg, self.llm_of(cfg), first_query)
        return await asyncio.to_thread(self.conversations.rename, app.id, end_user_id, conv.id, title)

    async def suggested(self, app: App, user: str, message_id: str) -> list[str]:
        if app.mode not in CHAT_MODES and app.mode != "advanced-chat":
            raise NotChatApp()
        features = (app.workflow.get("features") or {}) if app.workflow else (app.model_config_ or {})
        if not (features.get("suggested_questions_after_answer") or {}).get("enabled"):
            raise BadRequest("Suggested Questions Is Disabled.")
        model = _suggestion_model(app)
        end_user_id = await asyncio.to_thread(self.find_end_user_id, app.id, user)
        if end_user_id is None:
            raise _message_missing()
        msg = await asyncio.to_thread(self.messages.get, app.id, end_user_id, message_id)
        if msg.suggested_questions is not None:
            return list(msg.suggested_questions)
        page = await asyncio.to_thread(self.messages.page, app.id, end_user_id, msg.conversation_id, None, 5)
        history = "\n".join(f"Human: {m.query}\nAssistant: {m.answer}" for m, _ in page.items)
        try:
            if model is None:
                raise AppUnavailable("The app names no model to suggest questions with.")
            result = await self._models.llm(*model).invoke(
                LLMRequest(
                    model=model[1],
                    messages=[ChatMessage("user", history + "\n\n" + _SUGGEST_PROMPT)],
                    params={"max_tokens": 256, "temperature": 0},
                )
            )
            match = _outermost(result.text, "[", "]")
            questions = [str(q) for q in json.loads(match)][:3] if match else []
        except Exception as exc:
            log.info("suggested questions failed: %s", exc)
            questions = []
        await asyncio.to_thread(self.messages.set_suggested, msg.id, questions)
        return questions

    def stop(self, app_id: str, user: str | None, task_id: str) -> None:
        if task_id not in self.running:  # another process's, or over: no lookup (relayed stops reach every process)
            return
        end_user_id = self.find_end_user_id(app_id, user)
        if end_user_id is not None:
            self.running.stop(task_id, end_user_id, app_id)


def _conversation_missing() -> Exception:
    from openify.services.chat.conversations import ConversationNotFound

    return ConversationNotFound()


def _message_missing() -> Exception:
    from openify.services.chat.messages import MessageNotFound

    return MessageNotFound()


def _insert(s: Session | Connection, row: Any) -> None:
    """Insert a new row with one Core statement: the ORM's unit of work costs more than the write itself."""
    table = row.__table__
    s.execute(insert(table), [{c.name: getattr(row, c.name) for c in table.columns}])


def _suggestion_model(app: App) -> tuple[str, str] | None:
    """(provider, model) for suggestions: the app's model, or a chatflow's first LLM node's model."""
    if app.workflow is None:
        model = (app.model_config_ or {}).get("model") or {}
        return (str(model["provider"]), str(model["name"])) if model.get("provider") and model.get("name") else None
    for node in ((app.workflow.get("graph") or {}).get("nodes")) or []:
        data = node.get("data") or {}
        model = data.get("model") or {}
        if data.get("type") == "llm" and model.get("provider") and model.get("name"):
            return str(model["provider"]), str(model["name"])
    return None


def _initial_name(query: str) -> str:
    return query[:20] + "…" if len(query) > 20 else query


def _unix(dt: Any) -> int:
    from datetime import UTC

    return int(dt.replace(tzinfo=UTC).timestamp())


def _estimate(messages: Sequence[ChatMessage], answer: str, started: float) -> Usage:
    prompt = sum(count_tokens(m.content) for m in messages if isinstance(m.content, str))
    return Usage(prompt_tokens=prompt, completion_tokens=count_tokens(answer), latency=monotonic() - started)


def _estimate_stopped(usage: Usage, messages: Sequence[ChatMessage], answer: str, started: float) -> Usage:
    """A stopped call reports no usage: count what was sent and what came back, as Dify recomputes it."""
    if usage.total_tokens:
        return usage
    return _estimate(messages, answer, started)


_RESOURCE_KEYS = (
    "position",
    "dataset_id",
    "dataset_name",
    "document_id",
    "document_name",
    "data_source_type",
    "segment_id",
    "retriever_from",
    "score",
    "hit_count",
    "word_count",
    "segment_position",
    "index_node_hash",
    "content",
    "page",
    "doc_metadata",
    "title",
    "files",
    "summary",
)


def _wire_resources(resources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: r.get(k) for k in _RESOURCE_KEYS} | {"retriever_from": r.get("retriever_from") or "api"} for r in resources
    ]


def _end_file(record: Mapping[str, Any], url: str | None) -> dict[str, Any]:
    return {
        "related_id": record["id"],
        "extension": "." + record["extension"] if record.get("extension") else None,
        "filename": record["filename"],
        "size": record["size"],
        "mime_type": record["mime_type"],
        "transfer_method": record["transfer_method"],
        "type": record["type"],
        "url": url,
        "upload_file_id": record["upload_file_id"],
        "remote_url": record["remote_url"],
    }


__all__ = ["CHAT_MODES", "AppUnavailable", "ChatService", "Outcome", "TurnRequest", "thought_record"]
