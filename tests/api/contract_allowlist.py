"""Where Openify knowingly differs from Dify's published OpenAPI spec: one list, each case with its evidence.

Every entry is a place where Dify's real server (or the spec itself) disagrees with the spec, and Openify follows
the server. `tests/api/test_contract.py` forgives a mismatch only if an entry here matches the operation and the
one-line description of the failure. Evidence names Dify's source (github.com/langgenius/dify, `api/`) or the
section of `shared/reference/service-api.md` that records what Dify's server really answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowed:
    operation: str  # regex on "METHOD /path" of the spec
    failure: str  # regex on the one-line failure ("-> 200: Response violates schema: ... Schema at ...")
    evidence: str


_NULL = r"Response violates schema: null is not of type"

ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        r"(GET|POST|PATCH) /datasets(/\{dataset_id\})?$",
        _NULL + r' "number" Schema at .*retrieval_model_dict/properties/score_threshold',
        "Dify's default retrieval model has no score_threshold and `fields/dataset_fields.py` renders it with "
        "fields.Float, so it is null while score_threshold_enabled is false (service-api.md, RetrievalModel).",
    ),
    Allowed(
        r"(GET|POST|PATCH) /datasets(/\{dataset_id\})?$",
        _NULL + r' "string" Schema at .*/(embedding_model|embedding_model_provider|indexing_technique|'
        r"data_source_type|doc_form):",
        "These Dataset columns are nullable in Dify (`models/dataset.py`) and rendered by fields.String: an "
        "economy or empty knowledge base has no embedding model, no indexing technique until one is chosen, and "
        "no data_source_type/doc_form until its first document.",
    ),
    Allowed(
        r"(GET|POST) /datasets/\{dataset_id\}/documents/\{document_id\}/segments",
        _NULL + r' "string" Schema at .*Segment/properties/answer:',
        "DocumentSegment.answer is nullable (`models/dataset.py`) and only set in Q&A documents; "
        "`fields/segment_fields.py` renders it with fields.String, so text chunks answer null.",
    ),
    Allowed(
        r"GET /site$",
        _NULL + r' "string" Schema at /properties/'
        r"(chat_color_theme|copyright|privacy_policy|custom_disclaimer|icon_background):",
        "Site.chat_color_theme, copyright, privacy_policy, custom_disclaimer and icon_background are nullable columns "
        "(`models/model.py`), rendered as null by `controllers/service_api/app/site.py`'s fields.",
    ),
    Allowed(
        r"GET /workspaces/current/models/model-types/\{model_type\}",
        _NULL + r' "object" Schema at .*/(icon_small|icon_small_dark):',
        "ProviderWithModelsResponse.icon_small(_dark) are `I18nObject | None = None` "
        "(`core/entities/model_entities.py`): null for a provider without icons.",
    ),
    Allowed(
        r"POST /(chat-messages|completion-messages)$",
        r"-> 200: Response violates schema: [-0-9.e]+ is not of type \"string\" Schema at .*Usage/properties/"
        r"(prompt|completion|total)_(unit_)?price(_unit)?:",
        "Blocking bodies carry usage prices as numbers: Dify's encoder turns the Decimals into int or float "
        "(service-api.md §usage: strings in SSE, numbers in blocking bodies).",
    ),
    Allowed(
        r"GET /parameters$",
        r"is valid under more than one of the schemas listed in the 'oneOf' keyword Schema at "
        r"/properties/user_input_form/items:",
        "Spec defect: the oneOf branches of user_input_form items declare no required property, so every item "
        '(Dify\'s own `{"text-input": {...}}` shape) matches all of them.',
    ),
    Allowed(
        r"(POST /(chat-messages|completion-messages|workflows(/\{workflow_id\})?/run)|GET /workflow/.*/events)$",
        r"-> 200: SSE event violates schema: .* is not of type \"string\"",
        "Spec defect: every text/event-stream schema is `{type: string}` (the stream as text); each "
        "event's data is a JSON object, as the spec's own prose and service-api.md §3.5 describe.",
    ),
    Allowed(
        r"POST /datasets/\{dataset_id\}/document/create-by-file$",
        r"-> 415: Undocumented status code",
        "Dify answers 415 unsupported_file_type for a file type a knowledge base cannot index "
        "(`controllers/service_api/dataset/document.py` maps UnsupportedFileTypeError, `controllers/common/errors.py` "
        "code 415); the spec lists 415 only for update-by-file.",
    ),
    Allowed(
        r"POST /datasets/tags/unbinding$",
        r"-> 400: Undocumented status code",
        "The spec says tag_ids is 'required unless the legacy tag_id is provided' but lists no 400; Dify's "
        "TagUnbindingPayload (`controllers/service_api/dataset/dataset.py`) refuses a body with neither.",
    ),
    Allowed(
        r"POST /text-to-audio$",
        r"-> 200: Undocumented Content-Type: Received: application/json",
        "For an unknown message or an empty answer Dify's AudioService.transcript_tts returns None, which Flask "
        "sends as 200 with the JSON body null (`services/audio_service.py`).",
    ),
)

# Spec operations Openify does not serve (knowledge pipelines and human-input forms are not implemented); the
# contract test skips them rather than counting their 404s as conformance.
NOT_SERVED: tuple[str, ...] = (
    "/datasets/pipeline/file-upload",
    "/datasets/{dataset_id}/pipeline/datasource-plugins",
    "/datasets/{dataset_id}/pipeline/datasource/nodes/{node_id}/run",
    "/datasets/{dataset_id}/pipeline/run",
    "/form/human_input/{form_token}",
)


def allowed(operation: str, line: str) -> Allowed | None:
    """The entry that forgives this failure of `operation` ("METHOD /path"), if any."""
    for entry in ALLOWED:
        if re.match(entry.operation, operation) and re.search(entry.failure, line):
            return entry
    return None
