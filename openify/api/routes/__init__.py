"""One module per Dify resource; `service_routers()` lists what is mounted under /v1 and /api."""

from __future__ import annotations

from fastapi import APIRouter

from openify.api.routes import app_annotations, app_info, audio, end_users, health, models, workflows
from openify.api.routes import chat_messages, completion_messages, conversations, feedbacks, files, messages
from openify.api.routes import dataset_metadata, dataset_tags, datasets, documents, retrieve, segments


def service_routers() -> list[APIRouter]:
    return [health.router, app_info.router, end_users.router, models.router, workflows.router,
            chat_messages.router, completion_messages.router, conversations.router, feedbacks.router,
            files.router, messages.router, app_annotations.router, audio.router,
            # tags first: /datasets/tags must not be read as /datasets/{dataset_id}
            dataset_tags.router, datasets.router, documents.router, segments.router,
            dataset_metadata.router, retrieve.router]
