"""Knowledge tags and bindings; metadata fields (custom and built-in) and document metadata values."""

from __future__ import annotations

import uuid

import httpx

from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_text, create_dataset

H = dict[str, str]


async def test_tags_and_bindings(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "tagged"))["id"]
    r = await client.post("/v1/datasets/tags", headers=dataset_key, json={"name": "legal"})
    assert r.status_code == 200, r.text
    tag = r.json()
    assert (tag["name"], tag["type"], tag["binding_count"]) == ("legal", "knowledge", "0")
    assert_dify_error(
        await client.post("/v1/datasets/tags", headers=dataset_key, json={"name": "legal"}), 400, "invalid_param"
    )
    r = await client.post(
        "/v1/datasets/tags/binding", headers=dataset_key, json={"tag_ids": [tag["id"]], "target_id": ds}
    )
    assert r.status_code == 204
    listed = (await client.get("/v1/datasets/tags", headers=dataset_key)).json()
    assert listed == [{"id": tag["id"], "name": "legal", "type": "knowledge", "binding_count": "1"}]
    assert (await client.get(f"/v1/datasets/{ds}/tags", headers=dataset_key)).json() == {
        "data": [{"id": tag["id"], "name": "legal"}],
        "total": 1,
    }
    r = await client.patch("/v1/datasets/tags", headers=dataset_key, json={"tag_id": tag["id"], "name": "law"})
    assert r.json()["name"] == "law" and r.json()["binding_count"] == "1"
    assert (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()["tags"][0]["name"] == "law"
    r = await client.post(
        "/v1/datasets/tags/unbinding", headers=dataset_key, json={"tag_id": tag["id"], "target_id": ds}
    )
    assert r.status_code == 204
    assert (await client.get(f"/v1/datasets/{ds}/tags", headers=dataset_key)).json()["total"] == 0
    r = await client.request("DELETE", "/v1/datasets/tags", headers=dataset_key, json={"tag_id": tag["id"]})
    assert r.status_code == 204
    assert (await client.get("/v1/datasets/tags", headers=dataset_key)).json() == []
    for body in ({}, {"name": ""}, {"name": "x" * 51}):
        assert_dify_error(await client.post("/v1/datasets/tags", headers=dataset_key, json=body), 400, "invalid_param")
    missing = str(uuid.uuid4())
    assert_dify_error(
        await client.patch("/v1/datasets/tags", headers=dataset_key, json={"tag_id": missing, "name": "n"}),
        404,
        "not_found",
    )
    assert_dify_error(
        await client.post(
            "/v1/datasets/tags/binding", headers=dataset_key, json={"tag_ids": [missing], "target_id": ds}
        ),
        404,
        "not_found",
    )
    assert_dify_error(
        await client.post("/v1/datasets/tags/binding", headers=dataset_key, json={"tag_ids": [], "target_id": ds}),
        400,
        "invalid_param",
    )
    assert_dify_error(
        await client.post("/v1/datasets/tags/unbinding", headers=dataset_key, json={"target_id": ds}),
        400,
        "invalid_param",
    )
    assert_dify_error(await client.get(f"/v1/datasets/{missing}/tags", headers=dataset_key), 404, "not_found")


async def test_metadata_fields_and_values(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "meta"))["id"]
    doc = (await add_text(client, dataset_key, ds, "contract", "terms"))["document"]["id"]
    r = await client.post(f"/v1/datasets/{ds}/metadata", headers=dataset_key, json={"type": "string", "name": "author"})
    assert r.status_code == 201 and r.json()["name"] == "author" and r.json()["type"] == "string"
    author = r.json()["id"]
    pages = (
        await client.post(f"/v1/datasets/{ds}/metadata", headers=dataset_key, json={"type": "number", "name": "pages"})
    ).json()["id"]
    ops = {
        "operation_data": [
            {
                "document_id": doc,
                "metadata_list": [
                    {"id": author, "name": "author", "value": "Ada"},
                    {"id": pages, "name": "pages", "value": 12},
                ],
            }
        ]
    }
    assert (
        await client.post(f"/v1/datasets/{ds}/documents/metadata", headers=dataset_key, json=ops)
    ).status_code == 200
    listed = (await client.get(f"/v1/datasets/{ds}/metadata", headers=dataset_key)).json()
    assert listed["built_in_field_enabled"] is False
    assert [(m["name"], m["count"]) for m in listed["doc_metadata"]] == [("author", 1), ("pages", 1)]
    got = (await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).json()
    assert {(m["name"], m["value"]) for m in got["doc_metadata"]} == {("author", "Ada"), ("pages", 12)}
    r = await client.patch(f"/v1/datasets/{ds}/metadata/{author}", headers=dataset_key, json={"name": "writer"})
    assert r.json() == {"id": author, "name": "writer", "type": "string"}
    got = (await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).json()
    assert ("writer", "Ada") in {(m["name"], m["value"]) for m in got["doc_metadata"]}
    partial = {
        "operation_data": [
            {"document_id": doc, "partial_update": True, "metadata_list": [{"id": pages, "name": "pages", "value": 13}]}
        ]
    }
    await client.post(f"/v1/datasets/{ds}/documents/metadata", headers=dataset_key, json=partial)
    got = (await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).json()
    assert {(m["name"], m["value"]) for m in got["doc_metadata"]} == {("writer", "Ada"), ("pages", 13)}
    assert (await client.delete(f"/v1/datasets/{ds}/metadata/{author}", headers=dataset_key)).status_code == 204
    got = (await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).json()
    assert [m["name"] for m in got["doc_metadata"]] == ["pages"]
    assert [
        f["name"] for f in (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()["doc_metadata"]
    ] == ["pages"]

    fields = (await client.get(f"/v1/datasets/{ds}/metadata/built-in", headers=dataset_key)).json()["fields"]
    assert {f["name"] for f in fields} >= {"document_name", "uploader", "upload_date", "last_update_date", "source"}
    assert (await client.post(f"/v1/datasets/{ds}/metadata/built-in/enable", headers=dataset_key)).json() == {
        "result": "success"
    }
    assert (await client.get(f"/v1/datasets/{ds}/metadata", headers=dataset_key)).json()["built_in_field_enabled"]
    await client.post(f"/v1/datasets/{ds}/metadata/built-in/disable", headers=dataset_key)
    assert not (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()["built_in_field_enabled"]


async def test_metadata_bad_input(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "meta-bad"))["id"]
    doc = (await add_text(client, dataset_key, ds, "d", "x"))["document"]["id"]
    url = f"/v1/datasets/{ds}/metadata"
    await client.post(url, headers=dataset_key, json={"type": "number", "name": "n"})
    for body in (
        {},
        {"type": "date", "name": "x"},
        {"type": "string"},
        {"type": "string", "name": ""},
        {"type": "string", "name": "n"},
        {"type": "string", "name": "document_name"},
    ):
        assert_dify_error(await client.post(url, headers=dataset_key, json=body), 400, "invalid_param")
    n = (await client.get(url, headers=dataset_key)).json()["doc_metadata"][0]["id"]
    missing = str(uuid.uuid4())
    assert_dify_error(await client.patch(f"{url}/{missing}", headers=dataset_key, json={"name": "z"}), 404, "not_found")
    assert_dify_error(await client.delete(f"{url}/{missing}", headers=dataset_key), 404, "not_found")
    assert_dify_error(await client.post(f"{url}/built-in/toggle", headers=dataset_key), 404, "not_found")
    docs_url = f"/v1/datasets/{ds}/documents/metadata"
    for ops, code, status in (
        ([], "invalid_param", 400),
        ([{"document_id": doc}], "invalid_param", 400),
        ([{"document_id": doc, "metadata_list": [{"id": n, "name": "n", "value": "abc"}]}], "invalid_param", 400),
        ([{"document_id": missing, "metadata_list": []}], "not_found", 404),
        ([{"document_id": doc, "metadata_list": [{"id": missing, "name": "n", "value": 1}]}], "not_found", 404),
    ):
        r = await client.post(docs_url, headers=dataset_key, json={"operation_data": ops})
        assert_dify_error(r, status, code)
    got = (await client.get(f"/v1/datasets/{ds}/documents/{doc}", headers=dataset_key)).json()
    assert got["doc_metadata"] == []  # nothing half-written
    assert_dify_error(await client.get(f"/v1/datasets/{missing}/metadata", headers=dataset_key), 404, "not_found")
