"""qa_model: question/answer pairs read from the file.

Dify generates the pairs with an LLM (QAIndexProcessor, one call per chunk, in the document language).
Openify reads pairs the file already has instead, with no model call: tables with question/answer
columns (csv, xlsx), and text written as `Q: ... A: ...` (also `Question:`/`Answer:`, `问：`/`答：`).
A file with neither fails with a readable error. Questions are embedded; answers ride along.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import regex as re  # type: ignore[import-untyped]  # no stubs; releases the GIL while it scans (concurrent=True)

from openify.knowledge.chunks import Chunk
from openify.knowledge.cleaner import clean
from openify.knowledge.extractors.base import Extracted, ExtractionError
from openify.knowledge.process_rule import ProcessRule

_Q_HEADERS = ("question", "questions", "q", "问题", "问", "提问", "query")
_A_HEADERS = ("answer", "answers", "a", "答案", "答", "回答", "response")
# Possessive quantifiers (`*+`): a line of `Q` and 1 MB of blanks with no colon would otherwise be split
# between the two blank runs in every way, a quadratic backtrack; the runs are disjoint, so no match is lost.
_MARK = re.compile(
    r"^[ \t]*+(?:(?P<q>Q|Question|问题?)|(?P<a>A|Answer|答案?))[ \t]*+\d*+[ \t]*+[:：][ \t]*+",
    re.IGNORECASE | re.MULTILINE,
)


def _pairs_from_rows(rows: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    if len(rows) < 2:
        return []
    header = [h.strip().lower() for h in rows[0]]
    q = next((i for i, h in enumerate(header) if h in _Q_HEADERS), None)
    a = next((i for i, h in enumerate(header) if h in _A_HEADERS), None)
    body = rows[1:]
    if q is None or a is None:
        # Dify's QA template for csv/xlsx is two columns, question then answer, with a header row.
        if len(header) != 2:
            return []
        q, a = 0, 1
    pairs = []
    for row in body:
        question = row[q].strip() if q < len(row) else ""
        answer = row[a].strip() if a < len(row) else ""
        if question and answer:
            pairs.append((question, answer))
    return pairs


def _pairs_from_text(text: str) -> list[tuple[str, str]]:
    marks = list(_MARK.finditer(text, concurrent=True))
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end() : end].strip()
        if m.group("q"):
            question = body
        elif question is not None:
            if question and body:
                pairs.append((question, body))
            question = None
    return pairs


class QASplitter:
    doc_form: ClassVar[str] = "qa_model"

    def split(self, extracted: Extracted, rule: ProcessRule) -> list[Chunk]:
        pairs = _pairs_from_rows(extracted.rows) or _pairs_from_text(clean(extracted.text, rule))
        if not pairs:
            raise ExtractionError(
                "no question/answer pairs found: use a table with question and answer columns, "
                "or text written as 'Q: ...' followed by 'A: ...'"
            )
        return [Chunk.of(clean(q, rule).strip(), i, answer=clean(a, rule).strip()) for i, (q, a) in enumerate(pairs, 1)]
