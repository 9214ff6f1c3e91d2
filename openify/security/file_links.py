"""Signed file links in Dify's format, so a client opens a file without an API key for a short while.

Uploads: `{base}/files/{id}/file-preview`; files that nodes made: `{base}/files/tools/{id}{extension}`; each with
`timestamp`, `nonce` and `sign`, the URL-safe base64 of HMAC-SHA256 over `file-preview|{id}|{timestamp}|{nonce}`
(Dify's core/file/helpers.py and core/tools/signature.py). A link is valid for `ttl_s` seconds after it was
made: Dify's FILES_ACCESS_TIMEOUT, 300 s. With no base URL the links are relative, as Dify's are when
FILES_URL is unset. Hand-written: a few lines of `hmac`, and Dify's exact link format is the point.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from urllib.parse import urlencode


class FileLinks:
    def __init__(self, key: Callable[[], bytes], base_url: str = "", ttl_s: int = 300) -> None:
        self._load_key = key  # read on first use: the data directory may not exist yet when this is built
        self._key: bytes | None = None
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def upload_file(self, file_id: str, *, as_attachment: bool = False) -> str:
        """A link to an uploaded file (`transfer_method` local_file)."""
        query = self._signed(file_id)
        if as_attachment:
            query["as_attachment"] = "true"
        return f"{self.base_url}/files/{file_id}/file-preview?{urlencode(query)}"

    def tool_file(self, file_id: str, extension: str) -> str:
        """A link to a file a node made (`transfer_method` tool_file); `extension` has its dot, or is empty."""
        return f"{self.base_url}/files/tools/{file_id}{extension}?{urlencode(self._signed(file_id))}"

    def valid(self, file_id: str, timestamp: str, nonce: str, sign: str) -> bool:
        """Whether a link's query was signed here for this file and has not expired."""
        if not (timestamp.isascii() and timestamp.isdigit() and nonce and sign):
            return False
        expected = self._sign(file_id, timestamp, nonce)
        # bytes, not str: compare_digest refuses a str with non-ASCII characters (a TypeError, a 500)
        return hmac.compare_digest(expected.encode(), sign.encode()) and time.time() - int(timestamp) <= self.ttl_s

    def _signed(self, file_id: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), os.urandom(16).hex()
        return {"timestamp": timestamp, "nonce": nonce, "sign": self._sign(file_id, timestamp, nonce)}

    def _sign(self, file_id: str, timestamp: str, nonce: str) -> str:
        if self._key is None:
            self._key = self._load_key()
        digest = hmac.new(self._key, f"file-preview|{file_id}|{timestamp}|{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()
