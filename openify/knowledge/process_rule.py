"""Dify's `process_rule` as a typed value: mode, pre-processing, segmentation, parent-child settings.

`ProcessRule.from_dify(d)` accepts the JSON of `POST /document/create-by-text` and raises InvalidParam
(a 400) for bad values; the service stores the original dict and passes the typed rule to the splitters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from openify.errors import InvalidParam

Mode = Literal["automatic", "custom", "hierarchical"]
ParentMode = Literal["paragraph", "full-doc"]
DocForm = Literal["text_model", "hierarchical_model", "qa_model"]

MODES: tuple[str, ...] = ("automatic", "custom", "hierarchical")
DOC_FORMS: tuple[str, ...] = ("text_model", "hierarchical_model", "qa_model")
PRE_PROCESSING_RULES: tuple[str, ...] = ("remove_stopwords", "remove_extra_spaces", "remove_urls_emails")

# Dify's DatasetProcessRule.AUTOMATIC_RULES. Its "delimiter" is not used by Dify's automatic splitter,
# which merges pieces split on paragraph, sentence and word boundaries up to 500 tokens.
AUTOMATIC_RULES: dict[str, Any] = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "segmentation": {"delimiter": "\n", "max_tokens": 500, "chunk_overlap": 50},
}
# What Dify's console proposes for a new parent-child knowledge base; used when `automatic` meets
# `hierarchical_model`, which Dify itself does not allow through the console.
HIERARCHICAL_DEFAULTS: dict[str, Any] = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "parent_mode": "paragraph",
    "segmentation": {"separator": "\n\n", "max_tokens": 500, "chunk_overlap": 0},
    "subchunk_segmentation": {"separator": "\n", "max_tokens": 200, "chunk_overlap": 0},
}
MIN_SEGMENT_TOKENS = 50  # Dify's lower bound for custom segments
MAX_SEGMENT_TOKENS = 4000  # Dify's INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH default

_ESCAPES = re.compile(r"\\(n|t|r|\\)")
_ESCAPE_VALUES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape_separator(separator: str) -> str:
    """Turn the typed escapes `\\n`, `\\t`, `\\r`, `\\\\` into characters, as Dify does with `\\n\\n`.

    Dify runs `codecs.decode(sep, "unicode_escape")`, which garbles non-Latin separators such as `。`;
    only these four escapes are decoded here.
    """
    return _ESCAPES.sub(lambda m: _ESCAPE_VALUES[m.group(1)], separator)


@dataclass(frozen=True, slots=True)
class Segmentation:
    separator: str = "\n"  # already unescaped
    max_tokens: int = 500
    chunk_overlap: int = 0


@dataclass(frozen=True, slots=True)
class ProcessRule:
    mode: Mode = "automatic"
    remove_extra_spaces: bool = True
    remove_urls_emails: bool = False
    segmentation: Segmentation = field(default_factory=lambda: Segmentation("\n", 500, 50))
    parent_mode: ParentMode = "paragraph"
    subchunk_segmentation: Segmentation | None = None

    @classmethod
    def automatic(cls) -> ProcessRule:
        return cls.from_dify({"mode": "automatic"})

    @classmethod
    def from_dify(
        cls, rule: Mapping[str, Any] | None, doc_form: str = "text_model", max_segment_tokens: int = MAX_SEGMENT_TOKENS
    ) -> ProcessRule:
        """Validate a Dify process_rule dict; `None` or mode `automatic` take Dify's automatic rules."""
        if doc_form not in DOC_FORMS:
            raise InvalidParam(f"doc_form must be one of {', '.join(DOC_FORMS)}")
        rule = rule or {"mode": "automatic"}
        if not isinstance(rule, Mapping):
            raise InvalidParam("process_rule must be an object")
        mode = rule.get("mode", "automatic")
        if mode not in MODES:
            raise InvalidParam(f"process_rule.mode must be one of {', '.join(MODES)}")
        if mode == "automatic":
            rules: Mapping[str, Any] = HIERARCHICAL_DEFAULTS if doc_form == "hierarchical_model" else AUTOMATIC_RULES
        else:
            rules = rule.get("rules") or {}
            if not isinstance(rules, Mapping):
                raise InvalidParam("process_rule.rules must be an object")
        pre = _pre_processing(rules.get("pre_processing_rules", []))
        if mode == "automatic" and doc_form != "hierarchical_model":
            seg = Segmentation(
                "\n", AUTOMATIC_RULES["segmentation"]["max_tokens"], AUTOMATIC_RULES["segmentation"]["chunk_overlap"]
            )
            return cls("automatic", pre.get("remove_extra_spaces", True), pre.get("remove_urls_emails", False), seg)
        hierarchical = mode == "hierarchical" or doc_form == "hierarchical_model"
        parent_mode = rules.get("parent_mode", "paragraph") if hierarchical else "paragraph"
        if parent_mode not in ("paragraph", "full-doc"):
            raise InvalidParam("process_rule.rules.parent_mode must be paragraph or full-doc")
        if parent_mode == "full-doc" and "segmentation" not in rules:
            segmentation = Segmentation("\n\n", max_segment_tokens, 0)
        else:
            segmentation = _segmentation(
                rules.get("segmentation"), "segmentation", max_segment_tokens, "\n\n" if hierarchical else "\n"
            )
        sub = None
        if hierarchical:
            sub = _segmentation(
                rules.get("subchunk_segmentation") or HIERARCHICAL_DEFAULTS["subchunk_segmentation"],
                "subchunk_segmentation",
                max_segment_tokens,
                "\n",
            )
        return cls(
            "hierarchical" if hierarchical else "custom",
            pre.get("remove_extra_spaces", False),
            pre.get("remove_urls_emails", False),
            segmentation,
            cast(ParentMode, parent_mode),
            sub,
        )


def _pre_processing(items: Any) -> dict[str, bool]:
    if not isinstance(items, list):
        raise InvalidParam("process_rule.rules.pre_processing_rules must be a list")
    out: dict[str, bool] = {}
    for item in items:
        if not isinstance(item, Mapping) or item.get("id") not in PRE_PROCESSING_RULES:
            raise InvalidParam(f"pre_processing_rules ids must be one of {', '.join(PRE_PROCESSING_RULES)}")
        if not isinstance(item.get("enabled"), bool):
            raise InvalidParam(f"pre_processing_rules {item['id']}.enabled must be a boolean")
        out[item["id"]] = item["enabled"]
    return out


def _segmentation(value: Any, where: str, max_segment_tokens: int, default_separator: str) -> Segmentation:
    if not isinstance(value, Mapping):
        raise InvalidParam(f"process_rule.rules.{where} is required")
    separator = value.get("separator", value.get("delimiter", default_separator))
    max_tokens = value.get("max_tokens")
    overlap = value.get("chunk_overlap", 0) or 0
    if not isinstance(separator, str):
        raise InvalidParam(f"process_rule.rules.{where}.separator must be a string")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidParam(f"process_rule.rules.{where}.max_tokens must be an integer")
    if not MIN_SEGMENT_TOKENS <= max_tokens <= max_segment_tokens:
        raise InvalidParam(f"Custom segment length should be between {MIN_SEGMENT_TOKENS} and {max_segment_tokens}.")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InvalidParam(f"process_rule.rules.{where}.chunk_overlap must be a non-negative integer")
    if overlap >= max_tokens:
        raise InvalidParam(f"process_rule.rules.{where}.chunk_overlap must be smaller than max_tokens")
    return Segmentation(unescape_separator(separator), max_tokens, overlap)
