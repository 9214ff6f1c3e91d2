"""Settings refuse values that name something that does not exist."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from openify.settings import Settings


def test_pgvector_backend_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENIFY_VECTOR__BACKEND", "pgvector")
    with pytest.raises(ValidationError, match="pgvector is not available yet"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("OPENIFY_VECTOR__BACKEND", "numpy")
    assert Settings(_env_file=None).vector.backend == "numpy"  # type: ignore[call-arg]
