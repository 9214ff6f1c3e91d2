"""A server killed (SIGKILL) in the middle of indexing resumes on restart: every document completes,
none is indexed twice, and the indexes hold each chunk once."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from openify.knowledge.keyword.bm25 import BM25KeywordIndex
from openify.knowledge.vector_stores.hnsw import HnswVectorStore
from tests.conftest import LiveServer, start_server, stop_server

DOCS, PIECES = 6, 300
ENV = {"OPENIFY_JOB_WORKERS": "1", "OPENIFY_JOB_LEASE_S": "3"}


def _text(d: int) -> str:
    return "|".join(f"document {d} item {i} marker{d}n{i} about the harbour and its ships" for i in range(PIECES))


def _statuses(c: httpx.Client, ds: str, batches: list[str]) -> list[dict[str, Any]]:
    out = []
    for b in batches:
        r = c.get(f"/v1/datasets/{ds}/documents/{b}/indexing-status")
        assert r.status_code == 200, r.text
        out.extend(r.json()["data"])
    return out


def _wait(c: httpx.Client, ds: str, batches: list[str], done: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = _statuses(c, ds, batches)
        if sum(s["indexing_status"] == "completed" for s in statuses) >= done:
            return statuses
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def _client(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.mark.timeout(400)
def test_kill_during_indexing_then_restart(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "live"
    server = start_server(data, database_url, ENV)
    try:
        key = json.loads(server.cli("key", "create", "--dataset").stdout)["api_key"]
        with _client(server, key) as c:
            ds = c.post("/v1/datasets", json={"name": "harbour", "indexing_technique": "high_quality"}).json()["id"]
            rule = {
                "mode": "custom",
                "rules": {"pre_processing_rules": [], "segmentation": {"separator": "|", "max_tokens": 50}},
            }
            batches, ids = [], []
            for d in range(DOCS):
                r = c.post(
                    f"/v1/datasets/{ds}/document/create-by-text",
                    json={"name": f"doc{d}", "text": _text(d), "process_rule": rule},
                )
                assert r.status_code == 200, r.text
                batches.append(r.json()["batch"])
                ids.append(r.json()["document"]["id"])
            before = _wait(c, ds, batches, 1, 180)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    except BaseException:
        stop_server(server)
        raise
    finished = {s["id"]: s for s in before if s["indexing_status"] == "completed"}
    assert 1 <= len(finished) < DOCS, before  # killed mid-way: some done, some not

    server = start_server(data, database_url, ENV)
    try:
        with _client(server, key) as c:
            after = _wait(c, ds, batches, DOCS, 300)
            assert all(s["indexing_status"] == "completed" and s["error"] is None for s in after), after
            assert all(s["completed_segments"] == s["total_segments"] == PIECES for s in after), after
            for doc_id, s in finished.items():  # documents done before the kill were not indexed again
                again = next(a for a in after if a["id"] == doc_id)
                assert again["completed_at"] == s["completed_at"]
                assert again["processing_started_at"] == s["processing_started_at"]
            for d, doc_id in enumerate(ids):
                segs = c.get(f"/v1/datasets/{ds}/documents/{doc_id}/segments", params={"limit": 100, "page": 3})
                assert [s["position"] for s in segs.json()["data"]] == list(range(201, 301))
                assert segs.json()["total"] == PIECES
                for i in (0, PIECES - 1):  # each chunk is in every index exactly once
                    for method in ("full_text_search", "semantic_search"):
                        r = c.post(
                            f"/v1/datasets/{ds}/retrieve",
                            json={
                                "query": f"marker{d}n{i}",
                                "retrieval_model": {
                                    "search_method": method,
                                    "top_k": 5 if method == "full_text_search" else 100,
                                    "reranking_enable": False,
                                    "score_threshold_enabled": False,
                                },
                            },
                        )
                        records = r.json()["records"]
                        seg_ids = [rec["segment"]["id"] for rec in records]
                        assert len(seg_ids) == len(set(seg_ids)), method
                        if method == "full_text_search":
                            assert [rec["segment"]["content"] for rec in records] == [
                                f"document {d} item {i} marker{d}n{i} about the harbour and its ships"
                            ]
    finally:
        stop_server(server)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        jobs = conn.execute(sa.text("SELECT payload, status, attempts FROM jobs")).all()
    by_doc: dict[str, list[tuple[str, int]]] = {}
    for payload, status, attempts in jobs:
        body = payload if isinstance(payload, dict) else json.loads(payload)
        by_doc.setdefault(body["document_id"], []).append((status, attempts))
    assert sorted(by_doc) == sorted(ids)
    assert all(len(v) == 1 and v[0][0] == "done" for v in by_doc.values()), by_doc  # one job each, done once
    assert all(by_doc[i][0][1] == 1 for i in finished)  # finished before the kill: never claimed again
    assert any(v[0][1] == 2 for v in by_doc.values())  # the interrupted one was resumed
    # The index files hold exactly the chunks in the database, each once.
    with engine.connect() as conn:
        node_ids = set(conn.execute(sa.text("SELECT index_node_id FROM document_segments")).scalars())
    engine.dispose()
    assert len(node_ids) == DOCS * PIECES
    base = data / "knowledge" / "datasets" / ds
    assert set(json.loads((base / "manifest.json").read_text())) == node_ids
    assert BM25KeywordIndex(base / "keyword").count() == DOCS * PIECES
    assert HnswVectorStore(base / "vectors" / "hnswlib", 512).count() == DOCS * PIECES
