"""Chunks and child chunks: create, list (keyword, status), get, update, delete, and the indexes follow."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_text, create_dataset, retrieve

H = dict[str, str]


async def _doc(
    client: httpx.AsyncClient, h: H, text: str = "the owl hoots at night", **options: Any
) -> tuple[str, str]:
    ds = (await create_dataset(client, h, "seg"))["id"]
    doc = await add_text(client, h, ds, "doc", text, **options)
    return ds, doc["document"]["id"]


async def test_segment_crud_follows_the_index(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, doc = await _doc(client, dataset_key)
    base = f"/v1/datasets/{ds}/documents/{doc}/segments"
    r = await client.post(
        base,
        headers=dataset_key,
        json={
            "segments": [
                {"content": "the heron fishes in the pond", "keywords": ["heron"]},
                {"content": "the lark sings at dawn"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    created = r.json()["data"]
    assert r.json()["doc_form"] == "text_model" and [s["position"] for s in created] == [2, 3]
    assert created[0]["keywords"] == ["heron"] and created[0]["status"] == "completed" and created[0]["enabled"]
    assert _ids(await retrieve(client, dataset_key, ds, "heron")) == [created[0]["id"]]  # matches at once

    listed = (await client.get(base, headers=dataset_key, params={"limit": 2})).json()
    assert listed["total"] == 3 and listed["has_more"] is True and listed["doc_form"] == "text_model"
    assert [s["position"] for s in listed["data"]] == [1, 2]
    found = (await client.get(base, headers=dataset_key, params={"keyword": "lark"})).json()
    assert [s["id"] for s in found["data"]] == [created[1]["id"]]
    done = (await client.get(f"{base}?status=completed&status=error", headers=dataset_key)).json()
    assert done["total"] == 3
    assert (await client.get(base, headers=dataset_key, params={"status": "error"})).json()["total"] == 0

    one = (await client.get(f"{base}/{created[1]['id']}", headers=dataset_key)).json()
    assert one["data"]["content"] == "the lark sings at dawn" and one["doc_form"] == "text_model"

    r = await client.post(
        f"{base}/{created[1]['id']}", headers=dataset_key, json={"segment": {"content": "the nightingale sings"}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["content"] == "the nightingale sings"
    assert await retrieve(client, dataset_key, ds, "lark") == []
    assert _ids(await retrieve(client, dataset_key, ds, "nightingale")) == [created[1]["id"]]

    r = await client.post(f"{base}/{created[1]['id']}", headers=dataset_key, json={"segment": {"enabled": False}})
    assert r.json()["data"]["enabled"] is False and r.json()["data"]["disabled_at"]
    assert await retrieve(client, dataset_key, ds, "nightingale") == []  # disabled: gone from every index
    await client.post(f"{base}/{created[1]['id']}", headers=dataset_key, json={"segment": {"enabled": True}})
    assert len(await retrieve(client, dataset_key, ds, "nightingale")) == 1

    r = await client.delete(f"{base}/{created[0]['id']}", headers=dataset_key)
    assert r.status_code == 204
    assert await retrieve(client, dataset_key, ds, "heron") == []
    assert_dify_error(await client.get(f"{base}/{created[0]['id']}", headers=dataset_key), 404, "not_found")


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["segment"]["id"] for r in records]


async def test_qa_segments_need_an_answer(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, doc = await _doc(client, dataset_key, "Q: What is the capital?\nA: Paris.", doc_form="qa_model")
    base = f"/v1/datasets/{ds}/documents/{doc}/segments"
    r = await client.post(base, headers=dataset_key, json={"segments": [{"content": "Who wrote it?"}]})
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post(
        base, headers=dataset_key, json={"segments": [{"content": "Who wrote it?", "answer": "Hugo"}]}
    )
    assert r.json()["data"][0]["answer"] == "Hugo" and r.json()["doc_form"] == "qa_model"
    assert len(await retrieve(client, dataset_key, ds, "Hugo")) == 1  # the answer is matched too


async def test_child_chunks(client: httpx.AsyncClient, dataset_key: H) -> None:
    rule = {
        "mode": "hierarchical",
        "rules": {
            "pre_processing_rules": [],
            "parent_mode": "paragraph",
            "segmentation": {"separator": "\\n\\n", "max_tokens": 500},
            "subchunk_segmentation": {"separator": "\\n", "max_tokens": 50},
        },
    }
    ds, doc = await _doc(
        client, dataset_key, "Owls hunt mice.\nOwls fly silently.", doc_form="hierarchical_model", process_rule=rule
    )
    base = f"/v1/datasets/{ds}/documents/{doc}/segments"
    seg = (await client.get(base, headers=dataset_key)).json()["data"][0]
    assert [c["content"] for c in seg["child_chunks"]] == ["Owls hunt mice.", "Owls fly silently."]
    url = f"{base}/{seg['id']}/child_chunks"
    r = await client.post(url, headers=dataset_key, json={"content": "Owls turn their heads."})
    assert r.status_code == 200, r.text
    child = r.json()["data"]
    assert child["type"] == "customized" and child["position"] == 3 and child["segment_id"] == seg["id"]
    assert (await retrieve(client, dataset_key, ds, "heads"))[0]["child_chunks"][0]["id"] == child["id"]
    page = (await client.get(url, headers=dataset_key, params={"limit": 2})).json()
    assert (page["total"], page["total_pages"], page["page"], page["limit"]) == (3, 2, 1, 2)
    assert [
        c["content"] for c in (await client.get(url, headers=dataset_key, params={"keyword": "mice"})).json()["data"]
    ] == ["Owls hunt mice."]
    r = await client.patch(f"{url}/{child['id']}", headers=dataset_key, json={"content": "Owls rotate necks."})
    assert r.json()["data"]["content"] == "Owls rotate necks."
    assert await retrieve(client, dataset_key, ds, "heads") == []
    assert (await retrieve(client, dataset_key, ds, "necks"))[0]["child_chunks"][0]["id"] == child["id"]
    assert (await client.delete(f"{url}/{child['id']}", headers=dataset_key)).status_code == 204
    assert await retrieve(client, dataset_key, ds, "necks") == []
    assert_dify_error(
        await client.patch(f"{url}/{child['id']}", headers=dataset_key, json={"content": "x"}), 404, "not_found"
    )
    r = await client.post(
        f"{base}/{seg['id']}",
        headers=dataset_key,
        json={"segment": {"content": "Owls nest in barns.\nOwls eat voles.", "regenerate_child_chunks": True}},
    )
    assert [c["content"] for c in r.json()["data"]["child_chunks"]] == ["Owls nest in barns.", "Owls eat voles."]
    assert await retrieve(client, dataset_key, ds, "mice") == []
    assert len(await retrieve(client, dataset_key, ds, "voles")) == 1


async def test_bad_input(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds, doc = await _doc(client, dataset_key)
    base = f"/v1/datasets/{ds}/documents/{doc}/segments"
    bodies: list[dict[str, Any]] = [
        {},
        {"segments": []},
        {"segments": [{"content": ""}]},
        {"segments": [{"answer": "a"}]},
        {"segments": [{"content": "a", "keywords": "k"}]},
        {"segments": "x"},
    ]
    for body in bodies:
        assert_dify_error(await client.post(base, headers=dataset_key, json=body), 400, "invalid_param")
    seg = (await client.get(base, headers=dataset_key)).json()["data"][0]
    updates: list[dict[str, Any]] = [
        {},
        {"segment": {"content": ""}},
        {"segment": {"enabled": "yes"}},
        {"segment": "x"},
    ]
    for body in updates:
        assert_dify_error(
            await client.post(f"{base}/{seg['id']}", headers=dataset_key, json=body), 400, "invalid_param"
        )
    assert_dify_error(await client.get(base, headers=dataset_key, params={"status": "lost"}), 400, "invalid_param")
    # Dify's paginate(error_out=False) clamps: page 0 is page 1, a limit below 1 is 20.
    for params in ({"page": 0}, {"limit": -1}):
        r = await client.get(base, headers=dataset_key, params=params)
        assert r.status_code == 200 and r.json()["data"], r.text
    missing = str(uuid.uuid4())
    assert_dify_error(await client.get(f"{base}/{missing}", headers=dataset_key), 404, "not_found")
    assert_dify_error(await client.delete(f"{base}/{missing}", headers=dataset_key), 404, "not_found")
    assert_dify_error(
        await client.get(f"/v1/datasets/{ds}/documents/{missing}/segments", headers=dataset_key), 404, "not_found"
    )
    assert_dify_error(
        await client.get(f"/v1/datasets/{missing}/documents/{doc}/segments", headers=dataset_key), 404, "not_found"
    )
    # child chunks exist only in hierarchical documents
    r = await client.post(f"{base}/{seg['id']}/child_chunks", headers=dataset_key, json={"content": "c"})
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post(f"{base}/{seg['id']}/child_chunks", headers=dataset_key, json={"content": ""})
    assert_dify_error(r, 400, "invalid_param")
    # a disabled document takes no new chunks (Dify: 404)
    await client.patch(f"/v1/datasets/{ds}/documents/status/disable", headers=dataset_key, json={"document_ids": [doc]})
    r = await client.post(base, headers=dataset_key, json={"segments": [{"content": "x"}]})
    assert_dify_error(r, 404, "not_found")
    assert (await client.get(base, headers=dataset_key)).json()["total"] == 1
