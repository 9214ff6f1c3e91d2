"""Documents: create by text and by file (every file type), background indexing, process rules,
list/get/delete, status actions, update, download, and bad input on every parameter."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from typing import Any

import httpx
import pytest

from openify.services.container import Services
from tests.api.dify import assert_dify_error
from tests.api.knowledge import add_file, add_text, create_dataset, docx, pdf, retrieve, wait_batch, xlsx

H = dict[str, str]


async def _segments(client: httpx.AsyncClient, h: H, ds: str, doc: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/datasets/{ds}/documents/{doc}/segments", headers=h, params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_create_by_text_returns_at_once_then_indexes(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "kb"))["id"]
    r = await client.post(
        f"/v1/datasets/{ds}/document/create-by-text",
        headers=dataset_key,
        json={"name": "faq", "text": "退款需要七天。\n\n发票可以在线申请。", "indexing_technique": "economy"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["batch"] and body["document"]["indexing_status"] == "waiting"
    assert body["document"]["display_status"] == "queuing" and body["document"]["name"] == "faq"
    status = await wait_batch(client, dataset_key, ds, body["batch"])
    assert status[0]["indexing_status"] == "completed" and status[0]["error"] is None
    assert status[0]["completed_segments"] == status[0]["total_segments"] >= 1
    for stamp in (
        "processing_started_at",
        "parsing_completed_at",
        "cleaning_completed_at",
        "splitting_completed_at",
        "completed_at",
    ):
        assert isinstance(status[0][stamp], int), stamp
    doc = (await client.get(f"/v1/datasets/{ds}/documents/{body['document']['id']}", headers=dataset_key)).json()
    assert doc["display_status"] == "available" and doc["segment_count"] == status[0]["total_segments"]
    assert doc["document_process_rule"]["mode"] == "automatic" and doc["word_count"] > 0
    assert (await retrieve(client, dataset_key, ds, "发票"))[0]["segment"]["content"].endswith("发票可以在线申请。")
    # The legacy underscore alias is routed too.
    r = await client.post(
        f"/v1/datasets/{ds}/document/create_by_text", headers=dataset_key, json={"name": "b", "text": "legacy alias"}
    )
    assert r.status_code == 200, r.text


FILES = {
    "notes.txt": ("text/plain", b"The warranty lasts two years."),
    "guide.md": ("text/markdown", b"# Guide\n\nThe warranty lasts two years."),
    "page.html": ("text/html", b"<html><body><h1>Page</h1><p>The warranty lasts two years.</p></body></html>"),
    "paper.pdf": ("application/pdf", pdf("The warranty lasts two years.")),
    "memo.docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        docx(["Memo", "The warranty lasts two years."]),
    ),
    "table.csv": ("text/csv", b"topic,detail\nwarranty,The warranty lasts two years.\n"),
    "sheet.xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        xlsx([["topic", "detail"], ["warranty", "The warranty lasts two years."]]),
    ),
    "data.json": ("application/json", json.dumps({"warranty": "The warranty lasts two years."}).encode()),
}


@pytest.mark.parametrize("filename", sorted(FILES))
async def test_each_file_type_is_indexed(client: httpx.AsyncClient, dataset_key: H, filename: str) -> None:
    ds = (await create_dataset(client, dataset_key, "files", indexing_technique="economy"))["id"]
    mime, data = FILES[filename]
    r = await add_file(client, dataset_key, ds, filename, data, mime=mime)
    assert r.status_code == 200, r.text
    assert r.json()["document"]["name"] == filename and r.json()["document"]["indexing_status"] == "waiting"
    status = await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert status[0]["indexing_status"] == "completed", status
    records = await retrieve(client, dataset_key, ds, "warranty two years")
    assert records and "two years" in records[0]["segment"]["content"]
    assert records[0]["segment"]["document"]["name"] == filename


async def test_file_options_and_upload_errors(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    ds = (await create_dataset(client, dataset_key, "up"))["id"]
    opts = json.dumps(
        {
            "indexing_technique": "economy",
            "process_rule": {
                "mode": "custom",
                "rules": {"pre_processing_rules": [], "segmentation": {"separator": "###", "max_tokens": 100}},
            },
        }
    )
    r = await add_file(client, dataset_key, ds, "parts.txt", b"part one###part two###part three", opts)
    assert r.status_code == 200, r.text
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert [s["content"] for s in await _segments(client, dataset_key, ds, r.json()["document"]["id"])] == [
        "part one",
        "part two",
        "part three",
    ]

    assert_dify_error(await add_file(client, dataset_key, ds, "evil.exe", b"MZ..."), 415, "unsupported_file_type")
    assert_dify_error(await add_file(client, dataset_key, ds, "noext", b"\x00\x01\x02"), 415, "unsupported_file_type")
    big = b"a" * (services.settings.upload.file_size_limit_mb * 1024 * 1024 + 1)
    body = assert_dify_error(await add_file(client, dataset_key, ds, "big.txt", big), 413, "file_too_large")
    assert body["message"] == ""
    url = f"/v1/datasets/{ds}/document/create-by-file"
    assert_dify_error(await client.post(url, headers=dataset_key, data={"data": "{}"}), 400, "no_file_uploaded")
    two = [("file", ("a.txt", b"a", "text/plain")), ("other", ("b.txt", b"b", "text/plain"))]
    assert_dify_error(await client.post(url, headers=dataset_key, files=two), 400, "too_many_files")
    assert_dify_error(await add_file(client, dataset_key, ds, "a.txt", b"x", "{not json"), 400, "invalid_param")
    assert_dify_error(
        await add_file(client, dataset_key, ds, "a.txt", b"x", '{"doc_form": "slides"}'), 400, "invalid_param"
    )
    bad_rule = json.dumps({"process_rule": {"mode": "custom", "rules": {"segmentation": {"max_tokens": 5}}}})
    assert_dify_error(await add_file(client, dataset_key, ds, "a.txt", b"x", bad_rule), 400, "invalid_param")
    missing = str(uuid.uuid4())
    r = await client.post(
        f"/v1/datasets/{missing}/document/create-by-file",
        headers=dataset_key,
        files={"file": ("a.txt", b"x", "text/plain")},
    )
    assert_dify_error(r, 404, "not_found")
    docs = (await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key)).json()
    assert docs["total"] == 1  # no rejected upload left a record


async def test_corrupt_file_ends_in_error_status(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "bad", indexing_technique="economy"))["id"]
    r = await add_file(client, dataset_key, ds, "broken.pdf", pdf("Hello")[:60] + b"garbage" * 10)
    assert r.status_code == 200, r.text
    status = await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert status[0]["indexing_status"] == "error"
    assert "broken.pdf" in status[0]["error"]
    doc = (await client.get(f"/v1/datasets/{ds}/documents/{r.json()['document']['id']}", headers=dataset_key)).json()
    assert doc["display_status"] == "error" and doc["error"]
    r = await add_file(client, dataset_key, ds, "fake.docx", b"PK\x03\x04 not a zip")
    status = await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert status[0]["indexing_status"] == "error" and "fake.docx" in status[0]["error"]


LONG_ZH = "。".join(f"第{i}句讲述了知识库的索引和检索如何在服务器上运行并保持一致" for i in range(60)) + "。"


async def test_process_rules(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "rules"))["id"]
    # automatic: Dify's rules, 500 tokens per chunk; extra spaces removed.
    auto = await add_text(client, dataset_key, ds, "auto", "A   lot    of   spaces.\n\n\n\n\nNext.")
    segs = await _segments(client, dataset_key, ds, auto["document"]["id"])
    assert segs[0]["content"] == "A lot of spaces.\n\nNext."
    # custom: separator, max_tokens and pre-processing; CJK text cut on its own punctuation.
    rule = {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": True},
                {"id": "remove_urls_emails", "enabled": True},
            ],
            "segmentation": {"separator": "\\n", "max_tokens": 60, "chunk_overlap": 0},
        },
    }
    custom = await add_text(
        client, dataset_key, ds, "custom", "mail me at a@b.com or see https://x.org now\n" + LONG_ZH, process_rule=rule
    )
    segs = await _segments(client, dataset_key, ds, custom["document"]["id"])
    assert "a@b.com" not in segs[0]["content"] and "https://x.org" not in segs[0]["content"]
    assert len(segs) > 3 and all(s["tokens"] <= 60 for s in segs)
    assert all(str(s["content"]).endswith("。") for s in segs[1:-1])
    assert [s["position"] for s in segs] == list(range(1, len(segs) + 1))


async def test_hierarchical_and_qa_documents(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "hier"))["id"]
    rule = {
        "mode": "hierarchical",
        "rules": {
            "pre_processing_rules": [],
            "parent_mode": "paragraph",
            "segmentation": {"separator": "\\n\\n", "max_tokens": 500},
            "subchunk_segmentation": {"separator": "\\n", "max_tokens": 50},
        },
    }
    text = "Cats sleep a lot.\nCats like fish.\n\nDogs bark at night.\nDogs like bones."
    doc = await add_text(client, dataset_key, ds, "pets", text, doc_form="hierarchical_model", process_rule=rule)
    segs = await _segments(client, dataset_key, ds, doc["document"]["id"])
    assert [s["content"] for s in segs] == [
        "Cats sleep a lot.\nCats like fish.",
        "Dogs bark at night.\nDogs like bones.",
    ]
    assert [c["content"] for c in segs[1]["child_chunks"]] == ["Dogs bark at night.", "Dogs like bones."]
    records = await retrieve(client, dataset_key, ds, "bones")
    assert records[0]["segment"]["content"].startswith("Dogs")  # the parent is returned
    assert records[0]["child_chunks"][0]["content"] == "Dogs like bones."
    full = {
        "mode": "hierarchical",
        "rules": {
            "pre_processing_rules": [],
            "parent_mode": "full-doc",
            "subchunk_segmentation": {"separator": "\\n", "max_tokens": 50},
        },
    }
    doc = await add_text(client, dataset_key, ds, "whole", text, doc_form="hierarchical_model", process_rule=full)
    segs = await _segments(client, dataset_key, ds, doc["document"]["id"])
    assert len(segs) == 1 and len(segs[0]["child_chunks"]) == 4

    qa_ds = (await create_dataset(client, dataset_key, "qa"))["id"]
    doc = await add_text(
        client,
        dataset_key,
        qa_ds,
        "qa",
        "Q: 年假有几天？\nA: 十五天。\nQ: How long is the refund window?\nA: 30 days.",
        doc_form="qa_model",
    )
    segs = await _segments(client, dataset_key, qa_ds, doc["document"]["id"])
    assert [(s["content"], s["answer"]) for s in segs] == [
        ("年假有几天？", "十五天。"),
        ("How long is the refund window?", "30 days."),
    ]
    r = await client.post(
        f"/v1/datasets/{qa_ds}/document/create-by-text",
        headers=dataset_key,
        json={"name": "plain", "text": "no pairs here", "doc_form": "qa_model"},
    )
    status = await wait_batch(client, dataset_key, qa_ds, r.json()["batch"])
    assert status[0]["indexing_status"] == "error" and status[0]["error"]


async def test_list_get_delete_and_statuses(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "docs"))["id"]
    ids = [
        (await add_text(client, dataset_key, ds, f"doc-{i}", f"content number {i} zebra"))["document"]["id"]
        for i in range(3)
    ]
    page = (await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key, params={"limit": 2})).json()
    assert [d["id"] for d in page["data"]] == [ids[2], ids[1]] and page["total"] == 3 and page["has_more"] is True
    found = (await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key, params={"keyword": "doc-1"})).json()
    assert [d["id"] for d in found["data"]] == [ids[1]]

    url = f"/v1/datasets/{ds}/documents/status"
    r = await client.patch(f"{url}/disable", headers=dataset_key, json={"document_ids": [ids[0]]})
    assert r.json() == {"result": "success"}
    assert {rec["segment"]["document_id"] for rec in await retrieve(client, dataset_key, ds, "zebra")} == {
        ids[1],
        ids[2],
    }
    await client.patch(f"{url}/archive", headers=dataset_key, json={"document_ids": [ids[1]]})
    assert {rec["segment"]["document_id"] for rec in await retrieve(client, dataset_key, ds, "zebra")} == {ids[2]}
    by_status = {
        s: [
            d["id"]
            for d in (
                await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key, params={"status": s})
            ).json()["data"]
        ]
        for s in ("available", "disabled", "archived")
    }
    assert by_status == {"available": [ids[2]], "disabled": [ids[0]], "archived": [ids[1]]}
    assert_dify_error(
        await client.delete(f"/v1/datasets/{ds}/documents/{ids[1]}", headers=dataset_key),
        403,
        "archived_document_immutable",
    )
    await client.patch(f"{url}/un_archive", headers=dataset_key, json={"document_ids": [ids[1]]})
    await client.patch(f"{url}/enable", headers=dataset_key, json={"document_ids": [ids[0]]})
    assert len(await retrieve(client, dataset_key, ds, "zebra")) == 3
    assert_dify_error(
        await client.patch(f"{url}/explode", headers=dataset_key, json={"document_ids": [ids[0]]}),
        400,
        "invalid_action",
    )
    assert_dify_error(
        await client.patch(f"{url}/enable", headers=dataset_key, json={"document_ids": []}), 400, "invalid_param"
    )
    assert_dify_error(
        await client.patch(f"{url}/enable", headers=dataset_key, json={"document_ids": [str(uuid.uuid4())]}),
        404,
        "not_found",
    )

    only = (
        await client.get(f"/v1/datasets/{ds}/documents/{ids[0]}", headers=dataset_key, params={"metadata": "only"})
    ).json()
    assert set(only) == {"id", "doc_type", "doc_metadata"}
    without = (
        await client.get(f"/v1/datasets/{ds}/documents/{ids[0]}", headers=dataset_key, params={"metadata": "without"})
    ).json()
    assert "doc_metadata" not in without and without["id"] == ids[0]
    assert_dify_error(
        await client.get(f"/v1/datasets/{ds}/documents/{ids[0]}", headers=dataset_key, params={"metadata": "some"}),
        400,
        "invalid_metadata",
    )

    r = await client.delete(f"/v1/datasets/{ds}/documents/{ids[2]}", headers=dataset_key)
    assert r.status_code == 204
    assert {rec["segment"]["document_id"] for rec in await retrieve(client, dataset_key, ds, "zebra")} == {
        ids[0],
        ids[1],
    }
    assert_dify_error(await client.get(f"/v1/datasets/{ds}/documents/{ids[2]}", headers=dataset_key), 404, "not_found")
    assert_dify_error(
        await client.delete(f"/v1/datasets/{ds}/documents/{ids[2]}", headers=dataset_key), 404, "not_found"
    )
    assert_dify_error(
        await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key, params={"status": "lost"}),
        400,
        "invalid_param",
    )
    assert_dify_error(
        await client.get(f"/v1/datasets/{ds}/documents/nobatch/indexing-status", headers=dataset_key), 404, "not_found"
    )


async def test_update_by_text_and_file_reindex(client: httpx.AsyncClient, dataset_key: H, services: Services) -> None:
    ds = (await create_dataset(client, dataset_key, "upd"))["id"]
    doc = (await add_text(client, dataset_key, ds, "old", "the giraffe is tall"))["document"]["id"]
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc}/update-by-text",
        headers=dataset_key,
        json={"name": "new", "text": "the penguin swims"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["document"]["name"] == "new" and r.json()["batch"]
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert await retrieve(client, dataset_key, ds, "giraffe") == []
    assert (await retrieve(client, dataset_key, ds, "penguin"))[0]["segment"]["document_id"] == doc
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc}/update-by-file",
        headers=dataset_key,
        files={"file": ("zoo.md", b"# Zoo\n\nthe walrus dives", "text/markdown")},
    )
    assert r.status_code == 200, r.text
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert await retrieve(client, dataset_key, ds, "penguin") == []
    assert len(await retrieve(client, dataset_key, ds, "walrus")) == 1
    assert len(await _segments(client, dataset_key, ds, doc)) == 1
    r = await client.patch(
        f"/v1/datasets/{ds}/documents/{doc}",
        headers=dataset_key,
        files={"file": ("zoo.txt", b"the otter floats", "text/plain")},
    )
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert len(await retrieve(client, dataset_key, ds, "otter")) == 1
    url = (await client.get(f"/v1/datasets/{ds}/documents/{doc}/download", headers=dataset_key)).json()["url"]
    assert (await client.get(url)).content == b"the otter floats"
    files = list(services.blobs.path(f"knowledge/{ds}/{doc}").iterdir())
    assert [f.read_bytes() for f in files] == [b"the otter floats"]  # the replaced files are gone
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{doc}/update-by-text", headers=dataset_key, json={"text": "no name"}
    )
    assert_dify_error(r, 400, "invalid_param")
    r = await client.post(
        f"/v1/datasets/{ds}/documents/{uuid.uuid4()}/update-by-text",
        headers=dataset_key,
        json={"name": "n", "text": "t"},
    )
    assert_dify_error(r, 404, "not_found")


async def test_download_and_zip(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "dl", indexing_technique="economy"))["id"]
    r = await add_file(client, dataset_key, ds, "report.csv", b"a,b\n1,2\n", mime="text/csv")
    doc = r.json()["document"]["id"]
    url = (await client.get(f"/v1/datasets/{ds}/documents/{doc}/download", headers=dataset_key)).json()["url"]
    got = await client.get(url)  # signed: no key needed
    assert got.status_code == 200 and got.content == b"a,b\n1,2\n"
    assert_dify_error(await client.get(url.replace("sign=", "sign=0")), 403, "forbidden")
    text_doc = (await add_text(client, dataset_key, ds, "notes", "hello"))["document"]["id"]
    r = await client.post(
        f"/v1/datasets/{ds}/documents/download-zip", headers=dataset_key, json={"document_ids": [doc, text_doc]}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(z.namelist()) == ["notes.txt", "report.csv"] and z.read("notes.txt") == b"hello"
    assert_dify_error(
        await client.post(f"/v1/datasets/{ds}/documents/download-zip", headers=dataset_key, json={"document_ids": []}),
        400,
        "invalid_param",
    )


async def test_create_by_text_bad_input(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "bad"))["id"]
    url = f"/v1/datasets/{ds}/document/create-by-text"
    # A dataset without indexing_technique needs one on its first document.
    assert_dify_error(
        await client.post(url, headers=dataset_key, json={"name": "a", "text": "b"}), 400, "invalid_param"
    )
    base = {"name": "a", "text": "b", "indexing_technique": "economy"}
    for change in (
        {"name": ""},
        {"text": ""},
        {"name": None},
        {"text": 3},
        {"indexing_technique": "cheap"},
        {"doc_form": "slides"},
        {"process_rule": {"mode": "magic"}},
        {"process_rule": "auto"},
        {"process_rule": {"mode": "custom", "rules": {"segmentation": {"max_tokens": 10}}}},
        {"process_rule": {"mode": "custom", "rules": {"segmentation": {"max_tokens": 100, "chunk_overlap": 200}}}},
        {
            "process_rule": {
                "mode": "custom",
                "rules": {"pre_processing_rules": [{"id": "x", "enabled": 1}], "segmentation": {"max_tokens": 100}},
            }
        },
        {"retrieval_model": {"search_method": "x"}},
    ):
        r = await client.post(url, headers=dataset_key, json={**base, **change})
        assert_dify_error(r, 400, "invalid_param")
    r = await client.post(url, headers={**dataset_key, "Content-Type": "application/json"}, content=b"{bad")
    assert_dify_error(r, 400, "bad_request")
    assert (await client.get(f"/v1/datasets/{ds}/documents", headers=dataset_key)).json()["total"] == 0
    got = (await client.get(f"/v1/datasets/{ds}", headers=dataset_key)).json()
    assert got["indexing_technique"] is None  # a refused document changes nothing
    r = await client.post(f"/v1/datasets/{uuid.uuid4()}/document/create-by-text", headers=dataset_key, json=base)
    assert_dify_error(r, 404, "not_found")
    first = await add_text(client, dataset_key, ds, "first", "x")
    assert first["document"]["doc_form"] == "text_model"
    r = await client.post(url, headers=dataset_key, json={**base, "doc_form": "qa_model"})
    assert_dify_error(r, 400, "invalid_param")  # the dataset's doc_form is fixed by its first document


async def test_csv_rows_become_text(client: httpx.AsyncClient, dataset_key: H) -> None:
    ds = (await create_dataset(client, dataset_key, "csv", indexing_technique="economy"))["id"]
    buf = io.StringIO()
    csv.writer(buf).writerows([["city", "sales"], ["上海", "1200"], ["北京", "900"]])
    r = await add_file(client, dataset_key, ds, "s.csv", buf.getvalue().encode(), mime="text/csv")
    await wait_batch(client, dataset_key, ds, r.json()["batch"])
    assert "上海" in (await retrieve(client, dataset_key, ds, "上海"))[0]["segment"]["content"]
