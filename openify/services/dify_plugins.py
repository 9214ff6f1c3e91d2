"""Installing, listing and removing Dify plugins, and their provider credentials.

An install is a durable background job (`openify/jobs`): its row in `dify_plugins` shows progress, then the
plugin or the failure's cause. A job a killed server left running is claimed again after its lease and the
installer starts over, removing the half-made folder.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openify.errors import InvalidParam, NotFound
from openify.jobs.base import JobContext, JobRunner
from openify.settings import Settings
from openify.storage.db import Database
from openify.storage.tables import DifyPlugin
from openify.tools.dify_plugins.installer import MARKETPLACE_ID, fetch_source, find_python, install
from openify.tools.dify_plugins.package import BadDifyPlugin, read_manifest
from openify.tools.dify_plugins.source import DifyPluginSource, full_provider_id

INSTALL_JOB = "dify_plugin_install"


class DifyPluginNotFound(NotFound):
    """No installed Dify plugin (or tool provider) has this id."""

    code, status, message = "plugin_not_found", 404, "Plugin not found."


class DifyPluginService:
    def __init__(self, settings: Settings, db: Database, jobs: JobRunner, source: DifyPluginSource) -> None:
        self._settings, self._db, self._jobs, self.source = settings, db, jobs, source
        self.root = settings.data_dir / "dify_plugins"
        jobs.register(INSTALL_JOB, self._run_install, on_give_up=self._give_up)

    # --- install ---------------------------------------------------------------------------------------------
    def install(self, source: str) -> dict[str, Any]:
        """Queue an install of a folder, a `.difypkg` or a marketplace id; a local package's manifest is checked now."""
        source = source.strip()
        path = Path(source).expanduser()
        if path.exists():
            source = str(path.resolve())
            key = self._local_key(path)
        elif (match := MARKETPLACE_ID.match(source)) is not None:
            key = match.group("key")
        else:
            raise BadDifyPlugin(
                f"{source!r} is neither a plugin folder, a .difypkg file nor a marketplace id (author/name:version)"
            )
        with self._db.session() as s:
            row = s.scalar(select(DifyPlugin).where(DifyPlugin.plugin_key == key))
            if row is None:
                row = DifyPlugin(id=str(uuid.uuid4()), plugin_key=key, declarations={})
                s.add(row)
            row.source, row.status, row.progress, row.error = source, "installing", "queued", None
            s.flush()
            row.job_id = self._jobs.enqueue(INSTALL_JOB, {"plugin_id": row.id, "source": source}, session=s)
            return _view(row)

    def _local_key(self, path: Path) -> str:
        if path.is_dir():
            return read_manifest(path).key
        with tempfile.TemporaryDirectory() as scratch:
            folder = fetch_source(str(path), Path(scratch), "", 1.0)
            return read_manifest(folder).key

    def _run_install(self, ctx: JobContext, payload: Mapping[str, Any]) -> None:
        plugin_id, source = str(payload["plugin_id"]), str(payload["source"])
        config = self._settings.dify_plugins

        def progress(stage: str) -> None:
            ctx.check()
            with self._db.session() as s:
                row = s.get(DifyPlugin, plugin_id)
                if row is not None:
                    row.progress = stage

        self.root.mkdir(parents=True, exist_ok=True)
        progress("fetching")
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".fetch-") as scratch:
            folder = fetch_source(source, Path(scratch), config.marketplace_url, config.marketplace_timeout_s)
            python = find_python(config.python)
            plugin = install(folder, self.root, python, progress, config.install_timeout_s, config.passed_env())
        with self._db.session() as s:
            row = s.get(DifyPlugin, plugin_id)
            if row is None:
                return  # uninstalled while installing
            if row.plugin_key != plugin.key:
                raise BadDifyPlugin(f"the package is {plugin.key}, not {row.plugin_key}")
            old_root = row.root
            row.status, row.progress, row.version = "installed", "installed", plugin.version
            row.root, row.declarations = str(plugin.root), plugin.declarations
            ctx.finish(s)
        self.source.store.forget()
        if old_root and old_root != str(plugin.root):
            shutil.rmtree(old_root, ignore_errors=True)  # the version it replaced

    def _give_up(self, payload: Mapping[str, Any], error: str) -> None:
        with self._db.session() as s:
            row = s.get(DifyPlugin, str(payload["plugin_id"]))
            if row is not None and row.status == "installing":
                row.status, row.error = "failed", error.split(": ", 1)[-1] if ": " in error else error

    # --- list, get, uninstall --------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        with self._db.session() as s:
            return [_view(r) for r in s.scalars(select(DifyPlugin).order_by(DifyPlugin.plugin_key))]

    def get(self, plugin_key: str) -> dict[str, Any]:
        with self._db.session() as s:
            row = s.scalar(select(DifyPlugin).where(DifyPlugin.plugin_key == plugin_key))
            if row is None:
                raise DifyPluginNotFound(f"Dify plugin {plugin_key} is not installed")
            return _view(row)

    async def uninstall(self, plugin_key: str) -> None:
        root = await asyncio.to_thread(self._forget, plugin_key)
        self.source.store.forget()
        if root:
            plugin_root = Path(root)
            await self.source.runtime.stop_plugin(f"{plugin_key}:{plugin_root.name}")
            shutil.rmtree(plugin_root, ignore_errors=True)

    def _forget(self, plugin_key: str) -> str | None:
        with self._db.session() as s:
            row = s.scalar(select(DifyPlugin).where(DifyPlugin.plugin_key == plugin_key))
            if row is None:
                raise DifyPluginNotFound(f"Dify plugin {plugin_key} is not installed")
            root: str | None = row.root
            s.delete(row)
            return root

    # --- credentials -----------------------------------------------------------------------------------------
    async def set_credentials(self, provider: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """Store a tool provider's credentials (encrypted); only the names of the fields are ever shown again."""
        declared = await self.source.find_provider(provider)
        if declared is None:
            raise DifyPluginNotFound(f"no installed Dify plugin has the tool provider {full_provider_id(provider)}")
        fields = {str(f.get("name")): f for f in declared.credentials_schema}
        unknown = sorted(set(credentials) - set(fields))
        if unknown:
            raise InvalidParam(f"{declared.id} has no credential {unknown[0]!r}; it takes {sorted(fields)}")
        missing = [n for n, f in fields.items() if f.get("required") and not credentials.get(n)]
        if missing:
            raise InvalidParam(f"credential {missing[0]!r} of {declared.id} is required")
        self.source.store.set_credentials(declared.id, credentials)
        return {"provider": declared.id, "credentials": sorted(credentials)}


def _view(row: DifyPlugin) -> dict[str, Any]:
    d = row.declarations or {}
    return {
        "id": row.id,
        "plugin_id": row.plugin_key,
        "version": row.version,
        "status": row.status,
        "progress": row.progress,
        "error": row.error,
        "source": row.source,
        "tool_providers": [f"{row.plugin_key}/{p['name']}" for p in d.get("tool_providers", [])],
        "agent_strategies": [
            f"{row.plugin_key}/{p['name']}/{s['name']}"
            for p in d.get("agent_strategy_providers", [])
            for s in p.get("strategies", [])
        ],
    }
