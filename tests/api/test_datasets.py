"""Knowledge bases: create, list (paging, keyword, tags), get, update, delete, and bad input."""

from __future__ import annotations

import uuid

import httpx

from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_text, create_dataset

H = dict[str, str]


async def test_create_get_update_delete(client: httpx.AsyncClient, dataset_key: H) -> None:
    created = await create_dataset(client, dataset_key, "产品手册", description="docs", indexing_technique="economy")
    assert created["name"] == "产品手册" and created["indexing_technique"] == "economy"
    assert created["retrieval_model_dict"]["search_method"] == "keyword_search"
    assert created["document_count"] == 0 and created["tags"] == [] and created["provider"] == "vendor"
    got = (await client.get(f"/v1/datasets/{created['id']}", headers=dataset_key)).json()
    assert got["id"] == created["id"] and got["description"] == "docs"

    r = await client.patch(
        f"/v1/datasets/{created['id']}",
        headers=dataset_key,
        json={"name": "Manual", "description": "new", "permission": "all_team_members"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["description"], r.json()["permission"]) == ("Manual", "new", "all_team_members")
    assert "partial_member_list" in r.json()
    assert (await client.get(f"/v1/datasets/{created['id']}", headers=dataset_key)).json()["name"] == "Manual"

    r = await client.delete(f"/v1/datasets/{created['id']}", headers=dataset_key)
    assert r.status_code == 204 and r.content == b""
    assert_dify_error(await client.get(f"/v1/datasets/{created['id']}", headers=dataset_key), 404, "not_found")


async def test_high_quality_dataset_uses_the_embedded_model(client: httpx.AsyncClient, dataset_key: H) -> None:
    created = await create_dataset(client, dataset_key, "hq", indexing_technique="high_quality")
    assert created["embedding_model"] == "usem3" and created["embedding_model_provider"] == "openify"
    assert created["retrieval_model_dict"]["search_method"] == "semantic_search"


async def test_list_pages_newest_first_with_keyword_and_tags(client: httpx.AsyncClient, dataset_key: H) -> None:
    ids = [(await create_dataset(client, dataset_key, f"kb-{i}"))["id"] for i in range(5)]
    other = await create_dataset(client, dataset_key, "other")
    r = await client.get("/v1/datasets", headers=dataset_key, params={"page": 1, "limit": 2})
    body = r.json()
    assert (body["total"], body["page"], body["limit"], body["has_more"]) == (6, 1, 2, True)
    assert [d["id"] for d in body["data"]] == [other["id"], ids[4]]
    last = (await client.get("/v1/datasets", headers=dataset_key, params={"page": 3, "limit": 2})).json()
    assert [d["id"] for d in last["data"]] == [ids[1], ids[0]]
    assert last["has_more"] is True  # Dify: len(data) == limit, even on the last page
    empty = (await client.get("/v1/datasets", headers=dataset_key, params={"page": 4, "limit": 2})).json()
    assert empty["data"] == [] and empty["has_more"] is False
    found = (await client.get("/v1/datasets", headers=dataset_key, params={"keyword": "KB-"})).json()  # any case
    assert found["total"] == 5

    t1 = (await client.post("/v1/datasets/tags", headers=dataset_key, json={"name": "t1"})).json()
    t2 = (await client.post("/v1/datasets/tags", headers=dataset_key, json={"name": "t2"})).json()
    for target, tags in ((ids[0], [t1["id"], t2["id"]]), (ids[1], [t1["id"]])):
        r = await client.post(
            "/v1/datasets/tags/binding", headers=dataset_key, json={"tag_ids": tags, "target_id": target}
        )
        assert r.status_code == 204, r.text
    both = (await client.get(f"/v1/datasets?tag_ids={t1['id']}&tag_ids={t2['id']}", headers=dataset_key)).json()
    assert [d["id"] for d in both["data"]] == [ids[0]]  # AND-matched
    one = (await client.get("/v1/datasets", headers=dataset_key, params={"tag_ids": t1["id"]})).json()
    assert {d["id"] for d in one["data"]} == {ids[0], ids[1]}
    assert {t["name"] for t in both["data"][0]["tags"]} == {"t1", "t2"}


async def test_counts_follow_documents(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = await create_dataset(client, dataset_key, "counted")
    await add_text(client, dataset_key, ds["id"], "a", "alpha beta gamma")
    got = (await client.get(f"/v1/datasets/{ds['id']}", headers=dataset_key)).json()
    assert got["document_count"] == 1 and got["total_available_documents"] == 1
    assert got["word_count"] == len("alpha beta gamma") and got["indexing_technique"] == "economy"


async def test_bad_input(client: httpx.AsyncClient, dataset_key: H) -> None:
    await create_dataset(client, dataset_key, "dup")
    assert_dify_error(
        await client.post("/v1/datasets", headers=dataset_key, json={"name": "dup"}), 409, "dataset_name_duplicate"
    )
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 41},
        {"name": 5},
        {"name": "a", "indexing_technique": "cheap"},
        {"name": "a", "permission": "everyone"},
        {"name": "a", "description": "d" * 401},
        {"name": "a", "retrieval_model": {"search_method": "magic"}},
        {"name": "a", "indexing_technique": "high_quality", "retrieval_model": {"top_k": 0}},
    ):
        assert_dify_error(await client.post("/v1/datasets", headers=dataset_key, json=body), 400, "invalid_param")
    r = await client.post(
        "/v1/datasets",
        headers=dataset_key,
        json={
            "name": "a",
            "indexing_technique": "high_quality",
            "embedding_model_provider": "nowhere",
            "embedding_model": "nothing",
        },
    )
    assert_dify_error(r, 400, "provider_not_initialize")
    assert (await client.get("/v1/datasets", headers=dataset_key)).json()["total"] == 1  # nothing half-written
    assert_dify_error(await client.get("/v1/datasets", headers=dataset_key, params={"page": "x"}), 400, "invalid_param")
    # Dify's paginate(error_out=False) clamps: page 0 is page 1, limit 0 is 20, a page past the end is empty.
    for params, count in (({"page": 0}, 1), ({"limit": 0}, 1), ({"page": 10**19}, 0), ({"page": 10**7}, 0)):
        r = await client.get("/v1/datasets", headers=dataset_key, params=params)
        assert r.status_code == 200 and len(r.json()["data"]) == count, r.text
    missing = str(uuid.uuid4())
    assert_dify_error(await client.get(f"/v1/datasets/{missing}", headers=dataset_key), 404, "not_found")
    assert_dify_error(await client.get("/v1/datasets/not-a-uuid", headers=dataset_key), 404, "not_found")
    assert_dify_error(
        await client.patch(f"/v1/datasets/{missing}", headers=dataset_key, json={"name": "z"}), 404, "not_found"
    )
    assert_dify_error(await client.delete(f"/v1/datasets/{missing}", headers=dataset_key), 404, "not_found")
    other = await create_dataset(client, dataset_key, "other")
    r = await client.patch(f"/v1/datasets/{other['id']}", headers=dataset_key, json={"name": "dup"})
    assert_dify_error(r, 409, "dataset_name_duplicate")


async def test_needs_a_dataset_key(client: httpx.AsyncClient, dataset_key: H) -> None:
    assert_dify_error(await client.get("/v1/datasets"), 401, "unauthorized")
    assert_dify_error(
        await client.get("/v1/datasets", headers={"Authorization": "Bearer dataset-nope"}), 401, "unauthorized"
    )


async def test_update_bad_input_and_json_only(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "kb"))["id"]
    for body in (
        {"name": ""},
        {"name": "x" * 41},
        {"permission": "world"},
        {"indexing_technique": "cheap"},
        {"retrieval_model": {"search_method": "magic"}},
        {"description": 5},
        {"indexing_technique": "high_quality", "embedding_model_provider": "nowhere", "embedding_model": "nothing"},
    ):
        r = await client.patch(f"/v1/datasets/{ds}", headers=dataset_key, json=body)
        assert r.status_code == 400, (body, r.text)
    got = (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()
    assert (got["name"], got["indexing_technique"], got["permission"]) == ("kb", None, "only_me")
    r = await client.post("/v1/datasets", headers=dataset_key, json={"name": "ext", "provider": "external"})
    assert_dify_error(r, 400, "invalid_param")
    # JSON endpoints refuse other content types, as Flask's get_json does in Dify
    form = {**dataset_key, "Content-Type": "application/x-www-form-urlencoded"}
    assert_dify_error(await client.post("/v1/datasets", headers=form, content=b"name=x"), 415, "unsupported_media_type")
    assert_dify_error(
        await client.post(f"/v1/datasets/{ds}/retrieve", headers=form, content=b"query=x"),
        415,
        "unsupported_media_type",
    )
    assert_dify_error(await client.post("/v1/datasets/tags", headers=dataset_key), 415, "unsupported_media_type")


async def test_nul_characters_never_reach_the_database(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = await create_dataset(client, dataset_key, "nu\x00ll", description="a\x00b")
    assert (ds["name"], ds["description"]) == ("null", "ab")
    found = await client.get("/v1/datasets", headers=dataset_key, params={"keyword": "nu\x00", "tag_ids": "\x00"})
    assert found.status_code == 200 and found.json()["total"] == 1
    doc = await add_text(client, dataset_key, ds["id"], "d\x00oc", "te\x00xt")
    assert doc["document"]["name"] == "doc"
    r = await client.get(f"/v1/datasets/{ds['id']}/documents", headers=dataset_key, params={"keyword": "\x00"})
    assert r.status_code == 200
    r = await client.get(f"/v1/datasets/{ds['id']}/documents/b%00atch/indexing-status", headers=dataset_key)
    assert_dify_error(r, 404, "not_found")
    r = await client.post(
        f"/v1/datasets/{ds['id']}/document/create-by-file",
        headers=dataset_key,
        files={"file": ("f\x00.txt", b"file text", "text/plain")},
    )
    assert r.status_code == 200 and "\x00" not in r.json()["document"]["name"]  # httpx escapes it as %00
    r = await client.post("/v1/datasets/tags", headers=dataset_key, json={"name": "t\x00ag"})
    assert r.json()["name"] == "tag"
