"""Random signing keys kept in the blob store: the first process to ask makes one, and every process that shares
the data directory signs and checks links with the same key."""

from __future__ import annotations

import secrets

from openify.storage.blobs import BlobStore


def signing_key(blobs: BlobStore, name: str) -> bytes:
    key = f"keys/{name}.key"
    blobs.put_if_absent(key, secrets.token_bytes(32))
    return blobs.get(key)
