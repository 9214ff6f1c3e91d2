"""The web API of an app's site: what its pages (`/chat/{code}`, ...) call, scoped to one site.

Dify's web app calls `/api/passport` and `/api/...` with an `X-App-Code` header. Openify already serves the
Service API under `/api`, so the web API has its own prefix, `/web-api`, and the two never share a route.
A request carries `X-App-Code: CODE` and `Authorization: Bearer PASSPORT`; the passport names one anonymous
visitor (an end user `web-...`), whose `user` replaces any the body names. The app's API key never reaches
the browser. Every route delegates to the Service API's route function with the site's app, so generation,
history and feedback are the very same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from openify.api.deps import AppContext, ServicesDep, SettingsDep, bearer_token
from openify.api.routes import (
    app_info,
    chat_messages,
    completion_messages,
    conversations,
    feedbacks,
    messages,
    workflows,
)
from openify.api.schemas.chat import ChatMessageRequest, CompletionMessageRequest, UserBody
from openify.api.schemas.chat_history import FeedbackBody, RenameBody
from openify.errors import Unauthorized
from openify.services.keys import KeyPrincipal
from openify.services.sites import site_body
from openify.storage.tables import App, Site

router = APIRouter(prefix="/web-api", tags=["web app"])


@dataclass(frozen=True, slots=True)
class Visitor:
    app: App
    site: Site
    user: str  # the visitor's end-user `user` string

    @property
    def ctx(self) -> AppContext:
        # The Service API routes take an app context; the web API's principal is its site, never a key.
        return AppContext(self.app, KeyPrincipal(key_id=f"site:{self.site.code}", type="app", app_id=self.app.id))


def _code(request: Request) -> str:
    code = request.headers.get("x-app-code", "").strip()
    if not code:
        raise Unauthorized("X-App-Code header is required.")
    return code


async def visitor(request: Request, services: ServicesDep) -> Visitor:
    code = _code(request)
    passport = services.passports.check(bearer_token(request), code)
    site, app = await run_in_threadpool(services.sites.by_code, code)
    if passport.app_id != app.id:
        raise Unauthorized("The passport belongs to another app.")
    services.visitor_limit.hit(passport.visitor)
    return Visitor(app, site, passport.visitor)


WebVisitor = Annotated[Visitor, Depends(visitor)]


def _with_user(model: type[BaseModel], raw: dict[str, Any], user: str) -> Any:
    try:
        return model.model_validate({**raw, "user": user})
    except ValidationError as exc:  # the same 400 envelope as a Service API body
        raise RequestValidationError(exc.errors()) from None


JsonBody = Annotated[dict[str, Any], Body()]


@router.get("/passport", summary="A passport for a new visitor of the site")
async def passport(request: Request, services: ServicesDep) -> dict[str, str]:
    code = _code(request)
    _, app = await run_in_threadpool(services.sites.by_code, code)
    token, _ = services.passports.issue(app.id, code)
    return {"access_token": token}


@router.get("/site", summary="The site's settings")
async def site(v: WebVisitor) -> dict[str, Any]:
    return {"app_id": v.app.id, "mode": v.app.mode, "site": site_body(v.site, v.app)}


@router.get("/parameters", summary="Input form and features of the app")
def parameters(v: WebVisitor, settings: SettingsDep, services: ServicesDep) -> dict[str, Any]:
    return app_info.get_parameters(v.ctx, settings, services)


@router.get("/meta", summary="Tool icons of the app")
def meta(v: WebVisitor) -> dict[str, Any]:
    return app_info.get_meta(v.ctx)


@router.post("/chat-messages", summary="Send a chat message", response_model=None)
async def chat(raw: JsonBody, v: WebVisitor, services: ServicesDep) -> Any:
    body = _with_user(ChatMessageRequest, raw, v.user)
    return await chat_messages.chat_messages(body, v.ctx, services)


@router.post("/chat-messages/{task_id}/stop", summary="Stop a chat generation")
async def stop_chat(task_id: str, v: WebVisitor, services: ServicesDep) -> dict[str, str]:
    return await chat_messages.stop_chat(task_id, UserBody(user=v.user), v.ctx, services)


@router.post("/completion-messages", summary="Send a completion message", response_model=None)
async def completion(raw: JsonBody, v: WebVisitor, services: ServicesDep) -> Any:
    body = _with_user(CompletionMessageRequest, raw, v.user)
    return await completion_messages.completion_messages(body, v.ctx, services)


@router.post("/completion-messages/{task_id}/stop", summary="Stop a completion generation")
async def stop_completion(task_id: str, v: WebVisitor, services: ServicesDep) -> dict[str, str]:
    return await completion_messages.stop_completion(task_id, UserBody(user=v.user), v.ctx, services)


@router.post("/workflows/run", summary="Run the app's workflow", response_model=None)
async def run_workflow(raw: JsonBody, v: WebVisitor, services: ServicesDep) -> Any:
    body = _with_user(workflows.WorkflowRunRequest, raw, v.user)
    return await workflows.run_workflow(body, v.ctx, services)


@router.post("/workflows/tasks/{task_id}/stop", summary="Stop a workflow run")
async def stop_workflow(task_id: str, v: WebVisitor, services: ServicesDep) -> dict[str, str]:
    body = workflows.StopRequest.model_validate({"user": v.user})
    return await workflows.stop_workflow_task(task_id, body, v.ctx, services)


@router.get("/messages", summary="Messages of one of the visitor's conversations")
async def list_messages(
    v: WebVisitor,
    services: ServicesDep,
    conversation_id: str | None = None,
    first_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await messages.list_messages(v.ctx, services, conversation_id, v.user, first_id, limit)


@router.post("/messages/{message_id}/feedbacks", summary="Like or dislike a message")
async def feedback(message_id: str, raw: JsonBody, v: WebVisitor, services: ServicesDep) -> dict[str, str]:
    body = _with_user(FeedbackBody, raw, v.user)
    return await feedbacks.post_feedback(message_id, body, v.ctx, services)


@router.get("/messages/{message_id}/suggested", summary="Suggested follow-up questions")
async def suggested(message_id: str, v: WebVisitor, services: ServicesDep) -> dict[str, Any]:
    return await messages.suggested(message_id, v.ctx, services, v.user)


@router.get("/conversations", summary="The visitor's conversations")
async def list_conversations(
    v: WebVisitor,
    services: ServicesDep,
    last_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] = "-updated_at",
) -> dict[str, Any]:
    return await conversations.list_conversations(v.ctx, services, v.user, last_id, limit, sort_by)


@router.post("/conversations/{conversation_id}/name", summary="Rename a conversation")
async def rename(conversation_id: str, raw: JsonBody, v: WebVisitor, services: ServicesDep) -> dict[str, Any]:
    body = _with_user(RenameBody, raw, v.user)
    return await conversations.rename_conversation(conversation_id, body, v.ctx, services)


@router.delete("/conversations/{conversation_id}", summary="Delete a conversation")
async def delete(conversation_id: str, v: WebVisitor, services: ServicesDep) -> dict[str, str]:
    conversations._chat_app(v.app)
    end_user_id = await conversations._end_user(services, v.app.id, v.user)
    await asyncio.to_thread(services.chat.conversations.delete, v.app.id, end_user_id, conversation_id)
    return {"result": "success"}
