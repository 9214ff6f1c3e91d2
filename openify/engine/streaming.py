"""Ordered streaming of Answer and End nodes (Dify's ResponseStreamCoordinator, simplified).

A response node's session starts once its place in the run is certain: every upstream branch or
container node, and every upstream assigner writing a variable it shows, has finished or been
skipped, and the node itself is not skipped. One session streams at a time, in graph order: its
literal text at once, each variable as soon as it is in the pool, an LLM's text chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from openify.engine.events import TextChunk
from openify.engine.node import Node
from openify.engine.variables import VariablePool, to_text


class _Session:
    __slots__ = ("blockers", "index", "node_id", "segments")

    def __init__(self, node_id: str, segments: list[str | list[str]], blockers: set[str]) -> None:
        self.node_id, self.segments, self.blockers, self.index = node_id, segments, blockers, 0


class ResponseCoordinator:
    def __init__(
        self,
        response_ids: list[str],
        nodes: Mapping[str, Node],
        ancestors: Callable[[str], set[str]],
        pool: VariablePool,
        is_done: Callable[[str], bool],
        is_skipped: Callable[[str], bool],
    ) -> None:
        self._pool, self._is_done, self._is_skipped = pool, is_done, is_skipped
        self._nodes = nodes  # this (sub)graph's nodes only: a container's own variables count as ready
        self._pending: list[_Session] = []
        for rid in response_ids:
            segments = nodes[rid].response_segments()
            shown = {tuple(s[:2]) for s in segments if isinstance(s, list)}
            blockers = set()
            for a in ancestors(rid):
                node = nodes[a]
                if node.is_branch or node.is_container or node.data.get("error_strategy") == "fail-branch":
                    blockers.add(a)
                elif any(tuple(w[:2]) in shown for w in node.writes()):
                    blockers.add(a)
            self._pending.append(_Session(rid, segments, blockers))
        self._queue: list[_Session] = []
        self._active: _Session | None = None
        self._buffers: dict[tuple[str, ...], list[str]] = {}
        self._read: dict[tuple[str, tuple[str, ...]], int] = {}  # per session: two answers may show one text
        self._closed: set[str] = set()  # node ids whose streams are complete

    @property
    def idle(self) -> bool:
        return not self._pending and not self._queue and self._active is None

    def on_chunk(self, selector: tuple[str, ...], text: str) -> list[TextChunk]:
        self._buffers.setdefault(selector, []).append(text)
        return self._flush() if self._active is not None else []

    def on_change(self) -> list[TextChunk]:
        """A node finished or was skipped: start sessions now certain, and flush."""
        if self._pending:
            still = []
            for s in self._pending:
                if self._is_skipped(s.node_id):
                    continue
                if all(self._is_done(b) or self._is_skipped(b) for b in s.blockers):
                    self._queue.append(s)
                else:
                    still.append(s)
            self._pending = still
        return self._flush()

    def on_node_done(self, node_id: str) -> list[TextChunk]:
        self._closed.add(node_id)
        return self.on_change()

    def _flush(self) -> list[TextChunk]:
        out: list[TextChunk] = []
        while True:
            if self._active is None:
                if not self._queue:
                    return out
                self._active = self._queue.pop(0)
            s = self._active
            while s.index < len(s.segments):
                seg = s.segments[s.index]
                if isinstance(seg, str):
                    out.append(TextChunk(seg, (s.node_id, "answer"), s.node_id))
                    s.index += 1
                    continue
                if not self._variable(s, seg, out):
                    return out
                s.index += 1
            self._active = None

    def _variable(self, s: _Session, seg: list[str], out: list[TextChunk]) -> bool:
        """Emit what is available of one variable segment; True when the segment is complete."""
        source = seg[0]
        if source in self._nodes and self._is_skipped(source):
            return True
        key = tuple(seg)
        buf = self._buffers.get(key)
        if buf is not None:
            pos = self._read.get((s.node_id, key), 0)
            for text in buf[pos:]:
                out.append(TextChunk(text, key, s.node_id))
            self._read[(s.node_id, key)] = len(buf)
            if source in self._closed:
                return True
            return False
        if source in self._nodes and source not in self._closed and not self._is_done(source):
            # a node output not produced yet (or the container's loop variable mid-loop)
            if not self._is_done(s.node_id):
                return False
        if self._pool.has(seg):
            text = to_text(self._pool.get(seg), markdown=True)
            if text:
                out.append(TextChunk(text, key, s.node_id))
            return True
        # Absent: wait unless the response node itself has already run (then it never comes).
        return self._is_done(s.node_id)

    def finish(self) -> list[TextChunk]:
        """End of the (sub)graph: flush sessions of response nodes that ran."""
        self._pending = [s for s in self._pending if self._is_done(s.node_id)]
        self._queue.extend(self._pending)
        self._pending = []
        return self._flush()


def response_value(pool: VariablePool, segments: list[str | list[str]]) -> str:
    """The whole text of a response template, as the node's `answer` output."""
    parts = []
    for seg in segments:
        parts.append(seg if isinstance(seg, str) else to_text(pool.get(seg), markdown=True))
    return "".join(parts)
