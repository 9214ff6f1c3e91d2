"""Model provider configuration through the console API: edits `providers.yaml` and reloads the resolver.

Credentials are written to the providers file (mode 0600) and never returned: reads say only whether a key is set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from openify.errors import InvalidParam, NotFound
from openify.providers.config import ProvidersFileError, load_providers
from openify.providers.manager import ProviderManager
from openify.settings import Settings


class ProviderSettingsService:
    def __init__(self, settings: Settings, models: ProviderManager) -> None:
        self._settings, self._models = settings, models

    @property
    def _path(self) -> Path:
        return self._settings.providers_file

    def _read(self) -> dict[str, Any]:
        if not self._path.is_file():
            return {"providers": {}}
        doc = yaml.safe_load(self._path.read_text(encoding="utf-8")) or {}
        doc.setdefault("providers", {})
        return doc  # type: ignore[no-any-return]

    def list(self) -> dict[str, Any]:
        file = self._models.providers
        in_file = set(self._read()["providers"])
        data = []
        for name, cfg in file.providers.items():
            data.append({
                "name": name,
                "type": cfg.type,
                "label": cfg.label or name,
                "base_url": cfg.base_url,
                "api_version": cfg.api_version,
                "aliases": cfg.aliases,
                "api_key_set": cfg.api_key is not None,
                "source": "file" if name in in_file else "environment",
                "models": {m: c.model_dump(mode="json", exclude_none=True) for m, c in cfg.models.items()},
            })
        return {"default": file.default, "data": data}

    def put(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Create or replace provider `name`; an omitted api_key keeps the stored one."""
        doc = self._read()
        old = doc["providers"].get(name) or {}
        new = {k: v for k, v in entry.items() if v is not None}
        if "api_key" not in new and "api_key" in old:
            new["api_key"] = old["api_key"]
        doc["providers"][name] = new
        self._apply(doc)
        return next(p for p in self.list()["data"] if p["name"] == name)

    def delete(self, name: str) -> None:
        doc = self._read()
        if name not in doc["providers"]:
            raise NotFound(f"Provider {name!r} is not in {self._path.name}.")
        del doc["providers"][name]
        if doc.get("default") == name:
            doc["default"] = None
        self._apply(doc)

    def set_default(self, name: str | None) -> None:
        doc = self._read()
        doc["default"] = name
        self._apply(doc)

    def _apply(self, doc: dict[str, Any]) -> None:
        """Write the file atomically, then reload; an invalid configuration is refused and nothing changes."""
        if doc.get("default") is None:
            doc.pop("default", None)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".providers-")
        previous = self._path.read_bytes() if self._path.is_file() else None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path)
            self._models.reload(load_providers(self._settings))
        except (ProvidersFileError, ValueError) as exc:
            if previous is None:
                self._path.unlink(missing_ok=True)
            else:
                self._path.write_bytes(previous)
            raise InvalidParam(f"Invalid provider configuration: {exc}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
