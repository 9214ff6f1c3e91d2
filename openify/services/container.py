"""Every service of one running server, built once by `create_app` and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from openify.jobs.base import JobRunner
from openify.providers.manager import ProviderManager
from openify.registry import Registries
from openify.security.file_links import FileLinks
from openify.services.annotations import AnnotationService
from openify.services.apps import AppService
from openify.services.audio import AudioService
from openify.services.chat import ChatService, build_chat
from openify.services.dify_plugins import DifyPluginService
from openify.services.end_users import EndUserService
from openify.services.instances import Instances
from openify.services.keys import KeyService
from openify.services.knowledge import KnowledgeService
from openify.services.mcp_server import McpServerService
from openify.services.mcp_tools import McpToolProviders
from openify.services.openai_face import OpenAIFace
from openify.services.signing_keys import signing_key
from openify.services.sites import Passports, SiteService, VisitorRateLimit
from openify.services.stops import StopRelay, TaskStop
from openify.services.tool_host import PluginToolHost
from openify.services.tools import QueuedPluginInstaller, ToolManager
from openify.services.workflows.chatflows import ChatflowService
from openify.services.workflows.following import RunFollowing
from openify.services.workflows.runs import WorkflowRunService, workflow_service
from openify.settings import Settings
from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.tools.base import ToolSourceContext
from openify.tools.dify_plugins.source import plugin_source_of


@dataclass
class Services:
    settings: Settings
    registries: Registries
    db: Database
    apps: AppService
    keys: KeyService
    end_users: EndUserService
    blobs: BlobStore
    models: ProviderManager
    file_links: FileLinks = field(init=False)
    annotations: AnnotationService = field(init=False)
    audio: AudioService = field(init=False)
    workflows: WorkflowRunService = field(init=False)
    chatflows: ChatflowService = field(init=False)
    jobs: JobRunner = field(init=False)
    knowledge: KnowledgeService = field(init=False)
    stops: StopRelay = field(init=False)
    following: RunFollowing = field(init=False)
    instances: Instances = field(init=False)
    tools: ToolManager = field(init=False)
    dify_plugins: DifyPluginService = field(init=False)
    sites: SiteService = field(init=False)
    passports: Passports = field(init=False)
    visitor_limit: VisitorRateLimit = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = self.registries.job_runners.get(self.settings.job_runner)(self.db, self.settings)
        self.file_links = FileLinks(
            lambda: signing_key(self.blobs, "file-links"), self.settings.files_url, self.settings.files_access_timeout
        )
        self.annotations = AnnotationService(self.db, self.models, self.jobs)
        self.audio = AudioService(self.db, self.models)
        self.knowledge = KnowledgeService(self.settings, self.registries, self.db, self.blobs, self.models, self.jobs)
        self.workflows = workflow_service(
            self.db, self.registries, self.models, self.settings, self.end_users, self.blobs, self.file_links, self
        )
        host = PluginToolHost(self)
        self.tools = ToolManager(self.registries, ToolSourceContext(self.settings, host, self.db))
        self.dify_plugins = DifyPluginService(self.settings, self.db, self.jobs, plugin_source_of(self.tools))
        self.tools.installer = QueuedPluginInstaller(self.dify_plugins)  # `app import --install-missing`
        self.chatflows = ChatflowService(
            self.db,
            self.workflows,
            self.end_users,
            namer=lambda app, cid, query: self.chat.name_new_conversation(app, cid, query),
            annotations=self.annotations,
            models=self.models,
        )
        self.stops = StopRelay(self.settings.redis_url, self._apply_stop)
        self.following = RunFollowing(self.settings.redis_url, self.workflows)
        # Recoverers are looked up when called: `chat` is built on first use.
        recoverers = [lambda alive: self.chat.messages.recover(alive), self.workflows.recover]
        self.instances = Instances(self.db, self.settings.instance_lease_s, recoverers)
        self.sites = SiteService(self.db)
        self.passports = Passports(lambda: signing_key(self.blobs, "web-passports"))
        self.visitor_limit = VisitorRateLimit()

    async def _apply_stop(self, request: TaskStop) -> None:
        """A stop of a task this process runs, with the checks of its kind; other task ids are ignored."""
        if request.kind == "workflow":
            self.workflows.stop(request.app_id, request.user, request.task_id)
        elif request.kind == "chatflow":
            await self.chatflows.stop(request.app_id, request.user, request.task_id)
        else:
            self.chat.stop(request.app_id, request.user, request.task_id)

    @cached_property
    def mcp_servers(self) -> McpServerService:
        """Apps published as MCP servers."""
        return McpServerService(self.db, OpenAIFace(self))

    @cached_property
    def mcp_tools(self) -> McpToolProviders:
        """MCP servers used as tool providers."""
        return McpToolProviders(self.tools)

    @cached_property
    def chat(self) -> ChatService:
        """Chat, completion and agent apps; `chat.conversations` and `chat.messages` serve chatflows too."""
        return build_chat(self)

    @classmethod
    def build(cls, settings: Settings, registries: Registries) -> Services:
        db = Database(settings.sqlalchemy_url)
        return cls(
            settings=settings,
            registries=registries,
            db=db,
            apps=AppService(db, is_node_type_supported=lambda t: t in registries.nodes),
            keys=KeyService(db),
            end_users=EndUserService(db),
            blobs=BlobStore(settings.data_dir / "blobs"),
            models=ProviderManager(settings, registries),
        )

    def open(self) -> None:
        """Data directory and migrations, and nothing that runs in the background: what a CLI command needs."""
        # 0700: the SQLite file, uploads and keys are the server's alone (other local users, untrusted code).
        self.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.db.upgrade()

    def start(self) -> None:
        """Connections and migrations: run in the server's lifespan, never at import."""
        self.open()
        # Turns and runs left `running` by a server process that is gone end as errors, never left open.
        self.instances.start()
        self.jobs.start()  # resumes jobs a killed server left queued or running

    def stop(self) -> None:
        self.instances.stop()
        self.jobs.stop()
        self.close()

    def close(self) -> None:
        """Release connections and open indexes (after `open`, or as the last step of `stop`)."""
        self.knowledge.close()
        self.models.close()
        self.db.dispose()
