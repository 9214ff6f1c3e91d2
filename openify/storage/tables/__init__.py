"""Tables, one module per aggregate. Importing this package registers every table on Base.metadata."""

from openify.storage.tables.annotations import Annotation, AnnotationSetting
from openify.storage.tables.apps import ApiKey, App, EndUser
from openify.storage.tables.base import Base
from openify.storage.tables.instances import ServerInstance
from openify.storage.tables.sites import Site
from openify.storage.tables.jobs import Job
from openify.storage.tables.knowledge import (
    ChildChunk,
    Dataset,
    DatasetMetadataField,
    DatasetProcessRule,
    DatasetTag,
    DatasetTagBinding,
    Document,
    Segment,
)
from openify.storage.tables.workflows import ConversationVariable, NodeExecution, WorkflowRun, WorkflowVersion
from openify.storage.tables.chat import Conversation, Message, MessageFeedback, UploadFile

__all__ = [
    "Annotation", "AnnotationSetting",
    "ChildChunk", "Dataset", "DatasetMetadataField", "DatasetProcessRule", "DatasetTag", "DatasetTagBinding",
    "Document", "Job", "Segment", "ServerInstance", "Site",
    "Conversation", "Message", "MessageFeedback", "UploadFile",
    "ApiKey", "App", "Base", "ConversationVariable", "EndUser", "NodeExecution", "WorkflowRun", "WorkflowVersion"]
