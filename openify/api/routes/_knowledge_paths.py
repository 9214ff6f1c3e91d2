"""Path checks shared by the Knowledge routes: Dify declares ids as `<uuid:…>`, so others are a 404."""

from __future__ import annotations

import uuid

from openify.errors import NotFound


def uuid_or_404(value: str, what: str = "Dataset") -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found.") from None
    return value
