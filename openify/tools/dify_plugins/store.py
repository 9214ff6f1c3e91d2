"""What is stored about Dify plugins: installed plugins, provider credentials (encrypted), key-value storage."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select

from openify.storage.blobs import BlobStore
from openify.storage.db import Database
from openify.storage.tables import DifyPlugin, DifyPluginCredential, DifyPluginStorage
from openify.storage.tables.base import utcnow
from openify.tools.dify_plugins.installer import InstalledPlugin, load_installed

_TTL_S = 1.0


class DifyPluginStore:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self._db, self._blobs = db, BlobStore(data_dir / "blobs")
        self._key: Fernet | None = None
        self._installed: dict[str, tuple[str, InstalledPlugin]] = {}  # key -> (root, loaded), a read cache
        # Every tool call looks its plugin and credentials up: both are read at most once per `_TTL_S` (other
        # server processes see an install, an uninstall or new credentials that much later; this one at once).
        self._listed: tuple[float, list[InstalledPlugin]] | None = None
        self._secrets: dict[str, tuple[float, dict[str, Any]]] = {}

    def forget(self) -> None:
        """Drop the read caches (after an install, an uninstall or new credentials)."""
        self._listed = None
        self._secrets.clear()

    # --- installed plugins ------------------------------------------------------------------------
    def installed(self) -> list[InstalledPlugin]:
        """Every installed plugin (status `installed`), one per `author/name`."""
        listed = self._listed
        if listed is not None and time.monotonic() - listed[0] < _TTL_S:
            return listed[1]
        with self._db.session() as s:
            rows = s.execute(
                select(DifyPlugin.plugin_key, DifyPlugin.root).where(DifyPlugin.status == "installed")
            ).all()
        out = []
        for key, root in rows:
            cached = self._installed.get(key)
            if cached is not None and cached[0] == root:
                out.append(cached[1])
                continue
            try:
                plugin = load_installed(Path(str(root)))
            except (OSError, ValueError, KeyError):
                continue  # its folder is gone: not runnable
            self._installed[key] = (str(root), plugin)
            out.append(plugin)
        self._listed = (time.monotonic(), out)
        return out

    def find(self, plugin_key: str) -> InstalledPlugin | None:
        return next((p for p in self.installed() if p.key == plugin_key), None)

    @property
    def _fernet(self) -> Fernet:
        """The credentials' key, made on first use beside the server's other keys (the data directory)."""
        if self._key is None:
            self._blobs.put_if_absent("keys/dify-plugin-credentials.key", secrets.token_bytes(32))
            self._key = Fernet(base64.urlsafe_b64encode(self._blobs.get("keys/dify-plugin-credentials.key")))
        return self._key

    # --- credentials -------------------------------------------------------------------------------
    def set_credentials(self, provider: str, credentials: Mapping[str, Any]) -> None:
        token = self._fernet.encrypt(json.dumps(dict(credentials), ensure_ascii=False).encode())
        with self._db.session() as s:
            row = s.get(DifyPluginCredential, provider)
            if row is None:
                s.add(DifyPluginCredential(provider=provider, secret=token))
            else:
                row.secret = token
        self._secrets.pop(provider, None)

    def credentials(self, provider: str) -> dict[str, Any]:
        """The stored credentials of `provider` (`author/name/provider`), {} when none are stored."""
        cached = self._secrets.get(provider)
        if cached is not None and time.monotonic() - cached[0] < _TTL_S:
            return cached[1]
        with self._db.session() as s:
            row = s.get(DifyPluginCredential, provider)
            token = row.secret if row is not None else None
        if token is None:
            self._secrets[provider] = (time.monotonic(), {})
            return {}
        try:
            value = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            return {}  # the key file was replaced: the credentials must be entered again
        found = value if isinstance(value, dict) else {}
        self._secrets[provider] = (time.monotonic(), found)
        return found

    def credential_names(self) -> dict[str, bool]:
        """Providers with stored credentials (names only: values are never shown again)."""
        with self._db.session() as s:
            return dict.fromkeys(s.scalars(select(DifyPluginCredential.provider)).all(), True)

    # --- key-value storage (the SDK's session.storage) ---------------------------------------------
    def storage_get(self, plugin_key: str, key: str) -> bytes | None:
        with self._db.session() as s:
            row = s.get(DifyPluginStorage, (plugin_key, key))
            return row.value if row is not None else None

    def storage_set(self, plugin_key: str, key: str, value: bytes) -> None:
        with self._db.session() as s:
            row = s.get(DifyPluginStorage, (plugin_key, key))
            if row is None:
                s.add(DifyPluginStorage(plugin_key=plugin_key, key=key, value=value, updated_at=utcnow()))
            else:
                row.value, row.updated_at = value, utcnow()

    def storage_delete(self, plugin_key: str, key: str) -> None:
        with self._db.session() as s:
            s.execute(
                delete(DifyPluginStorage).where(
                    DifyPluginStorage.plugin_key == plugin_key, DifyPluginStorage.key == key
                )
            )

    def storage_size(self, plugin_key: str) -> int:
        with self._db.session() as s:
            values = s.scalars(select(DifyPluginStorage.value).where(DifyPluginStorage.plugin_key == plugin_key)).all()
        return sum(len(v) for v in values)
