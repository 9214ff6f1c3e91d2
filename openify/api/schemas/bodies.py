"""The base of JSON request bodies: unknown members ignored, NUL characters stripped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def no_nul(value: Any) -> Any:
    """`value` without NUL characters, in strings nested at any depth."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {no_nul(k): no_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nul(v) for v in value]
    return value


class JsonBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _strip_nul(cls, value: Any) -> Any:
        # Dify strips NUL from inputs; PostgreSQL text cannot hold it at all.
        return no_nul(value)
