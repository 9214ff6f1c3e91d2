"""Tables, one module per aggregate. Importing this package registers every table on Base.metadata."""

from openify.storage.tables.annotations import Annotation, AnnotationSetting
from openify.storage.tables.apps import ApiKey, App, EndUser
from openify.storage.tables.base import Base
from openify.storage.tables.chat import Conversation, Message, MessageFeedback, UploadFile
from openify.storage.tables.dify_plugins import DifyPlugin, DifyPluginCredential, DifyPluginStorage
from openify.storage.tables.instances import ServerInstance
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
from openify.storage.tables.mcp_servers import AppMcpServer, McpToolProvider
from openify.storage.tables.sites import Site
from openify.storage.tables.workflows import ConversationVariable, NodeExecution, WorkflowRun, WorkflowVersion

__all__ = [
    "Annotation",
    "AnnotationSetting",
    "ApiKey",
    "App",
    "AppMcpServer",
    "Base",
    "ChildChunk",
    "Conversation",
    "ConversationVariable",
    "Dataset",
    "DatasetMetadataField",
    "DatasetProcessRule",
    "DatasetTag",
    "DatasetTagBinding",
    "DifyPlugin",
    "DifyPluginCredential",
    "DifyPluginStorage",
    "Document",
    "EndUser",
    "Job",
    "McpToolProvider",
    "Message",
    "MessageFeedback",
    "NodeExecution",
    "Segment",
    "ServerInstance",
    "Site",
    "UploadFile",
    "WorkflowRun",
    "WorkflowVersion",
]
