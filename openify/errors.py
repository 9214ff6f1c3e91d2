"""The one error tree of Openify. Code, status and message are Dify's (api/libs/exception.py style).

Each class carries the wire values; `api/errors.py` is the only place that turns one into the
`{"code", "message", "status"}` envelope. This module imports nothing of ours.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OpenifyError(Exception):
    """Base of every error that reaches a client with a Dify code."""

    code: ClassVar[str] = "internal_server_error"
    status: ClassVar[int] = 500
    message: ClassVar[str] = "Internal Server Error, please contact support."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.detail = message if message is not None else type(self).message
        self.extra = extra
        super().__init__(self.detail)


# --- 400 ------------------------------------------------------------------------------------------
class InvalidParam(OpenifyError):
    """A request parameter is missing or has the wrong type or value (Dify's ValueError mapping)."""

    code, status, message = "invalid_param", 400, "Invalid parameter."


class BadRequest(OpenifyError):
    """The request cannot be understood: malformed JSON, a draft workflow id, a disabled feature."""

    code, status, message = "bad_request", 400, "Bad request."


class AppUnavailable(OpenifyError):
    """The app's configuration is missing or broken, or the endpoint is for another mode."""

    code, status, message = "app_unavailable", 400, "App unavailable, please check your app configurations."


class NotChatApp(OpenifyError):
    """A chat-only endpoint was called with a key of a non-chat app."""

    code, status, message = "not_chat_app", 400, "App mode is not in supported list."


class NotCompletionApp(OpenifyError):
    """Kept for completeness; Dify answers `app_unavailable` for completion endpoints on other modes."""

    code, status, message = "not_completion_app", 400, "Please check if your Completion app mode matches the right API route."


class NotWorkflowApp(OpenifyError):
    """A workflow-only endpoint was called with a key of a non-workflow app."""

    code, status, message = "not_workflow_app", 400, "Only support workflow app."


class ConversationCompleted(OpenifyError):
    """The conversation has ended and takes no new messages."""

    code, status, message = "conversation_completed", 400, "The conversation has ended. Please start a new conversation."


class ProviderNotInitialized(OpenifyError):
    """The app names a model provider that has no credentials (also a missing embedding model)."""

    code, status, message = (
        "provider_not_initialize",
        400,
        "No valid model provider credentials found. Please go to Settings -> Model Provider to complete your provider credentials.",
    )


class ProviderQuotaExceeded(OpenifyError):
    """The provider refused the call for quota or rate reasons after retries."""

    code, status, message = (
        "provider_quota_exceeded",
        400,
        "Your quota for Dify Hosted Model Provider has been exhausted. Please go to Settings -> Model Provider to complete your own provider credentials.",
    )


class ModelCurrentlyNotSupport(OpenifyError):
    """The configured provider does not offer the requested model or capability."""

    code, status, message = "model_currently_not_support", 400, "Dify Hosted OpenAI trial currently not support the GPT-4 model."


class CompletionRequestError(OpenifyError):
    """The model call failed (bad upstream answer, timeout, connection error)."""

    code, status, message = "completion_request_error", 400, "Completion request failed."


class NoFileUploaded(OpenifyError):
    """A multipart request carried no `file` part."""

    code, status, message = "no_file_uploaded", 400, "Please upload your file."


class TooManyFiles(OpenifyError):
    """A multipart request carried more than one file part."""

    code, status, message = "too_many_files", 400, "Only one file is allowed."


class FilenameNotExists(OpenifyError):
    """The uploaded file part has an empty filename."""

    code, status, message = "filename_not_exists_error", 400, "The specified filename does not exist."


class InvalidAction(OpenifyError):
    """A document status action is not one of enable, disable, archive, un_archive."""

    code, status, message = "invalid_action", 400, "Invalid action."


class InvalidMetadata(OpenifyError):
    """The `metadata` query parameter of a document read is not all, only or without."""

    code, status, message = "invalid_metadata", 400, "Invalid metadata value."


class DocumentIndexing(OpenifyError):
    """A document cannot be changed or deleted while it is being indexed."""

    code, status, message = "document_indexing", 400, "The document is being processed and cannot be edited."


class DatasetNotInitialized(OpenifyError):
    """Retrieval was asked of a knowledge base that is still indexing or has no index."""

    code, status, message = "dataset_not_initialized", 400, "The dataset is still being initialized or indexing. Please wait a moment."


# --- 401 / 403 ------------------------------------------------------------------------------------
class Unauthorized(OpenifyError):
    """The Authorization header is missing, malformed, or names no key of the needed type."""

    code, status, message = "unauthorized", 401, "Access token is invalid"


class Forbidden(OpenifyError):
    """The key is valid but the resource is not open to it (app disabled, API access off)."""

    code, status, message = "forbidden", 403, "Forbidden."


class ArchivedDocumentImmutable(OpenifyError):
    """An archived document cannot be changed or deleted."""

    code, status, message = "archived_document_immutable", 403, "The archived document is not editable."


class FileAccessDenied(OpenifyError):
    """A file of another app or end user was asked for."""

    code, status, message = "file_access_denied", 403, "Access to the requested file is denied."


# --- 404 ------------------------------------------------------------------------------------------
class NotFound(OpenifyError):
    """The resource does not exist, or is not visible to this key or end user."""

    code, status, message = "not_found", 404, "Not found."


class FileNotFound(OpenifyError):
    """An uploaded file id is unknown."""

    code, status, message = "file_not_found", 404, "File not found."


class EndUserNotFound(OpenifyError):
    """`GET /end-users/{id}` names no end user of this app."""

    code, status, message = "end_user_not_found", 404, "End user not found."


class MethodNotAllowed(OpenifyError):
    """The route exists but not for this HTTP method."""

    code, status, message = "method_not_allowed", 405, "The method is not allowed for the requested URL."


# --- 409 / 413 / 415 / 429 -----------------------------------------------------------------------
class DatasetNameDuplicate(OpenifyError):
    """A knowledge base with this name already exists."""

    code, status, message = "dataset_name_duplicate", 409, "The dataset name already exists. Please modify your dataset name."


class DatasetInUse(OpenifyError):
    """A knowledge base that apps still use cannot be deleted."""

    code, status, message = "dataset_in_use", 409, "The dataset is being used by some apps. Please remove the dataset from the apps before deleting it."


class FileTooLarge(OpenifyError):
    """An upload is over its category's size limit. Dify sends an empty message here."""

    code, status, message = "file_too_large", 413, ""


class UnsupportedFileType(OpenifyError):
    """An upload's type is not accepted here."""

    code, status, message = "unsupported_file_type", 415, "File type not allowed."


class UnsupportedMediaType(OpenifyError):
    """A JSON endpoint was called without a JSON body."""

    code, status, message = (
        "unsupported_media_type",
        415,
        "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
    )


class TooManyRequests(OpenifyError):
    """The app's concurrency cap is reached."""

    code, status, message = "too_many_requests", 429, "Too many requests. Please try again later."


# --- 500 ------------------------------------------------------------------------------------------
class InternalServerError(OpenifyError):
    """An unexpected failure; the details go to the log, never to the client."""

    code, status, message = "internal_server_error", 500, "Internal Server Error, please contact support."


# --- Import-time errors (CLI and console API) ----------------------------------------------------
class DSLError(InvalidParam):
    """A DSL file cannot be imported: bad YAML, unknown kind/mode/version, or an unsupported node."""

    code, status, message = "invalid_param", 400, "Invalid DSL."


class NoAudioUploaded(OpenifyError):
    """`/audio-to-text` without a file."""

    code, status, message = "no_audio_uploaded", 400, "Please upload your audio."


class AudioTooLarge(OpenifyError):
    code, status, message = "audio_too_large", 413, "Audio size exceeded."


class UnsupportedAudioType(OpenifyError):
    code, status, message = "unsupported_audio_type", 415, "Audio type not allowed."

