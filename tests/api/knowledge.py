"""Helpers for the Knowledge API tests: create datasets and documents, wait for indexing, build files."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx

Headers = dict[str, str]


async def create_dataset(client: httpx.AsyncClient, h: Headers, name: str = "kb", **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/datasets", headers=h, json={"name": name, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_batch(
    client: httpx.AsyncClient, h: Headers, dataset_id: str, batch: str, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Poll `indexing-status` until every document of the batch is completed or failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        r = await client.get(f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status", headers=h)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        if all(d["indexing_status"] in ("completed", "error") for d in data):
            return data
        assert loop.time() < deadline, data
        await asyncio.sleep(0.05)


async def add_text(
    client: httpx.AsyncClient, h: Headers, dataset_id: str, name: str, text: str, wait: bool = True, **options: Any
) -> dict[str, Any]:
    body = {"name": name, "text": text, "indexing_technique": "economy", **options}
    r = await client.post(f"/v1/datasets/{dataset_id}/document/create-by-text", headers=h, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    if wait:
        status = await wait_batch(client, h, dataset_id, out["batch"])
        assert status[0]["indexing_status"] == "completed", status
    return out


async def add_file(
    client: httpx.AsyncClient,
    h: Headers,
    dataset_id: str,
    filename: str,
    data: bytes,
    options: str | None = None,
    mime: str = "application/octet-stream",
) -> httpx.Response:
    form = {"data": options} if options is not None else {}
    return await client.post(
        f"/v1/datasets/{dataset_id}/document/create-by-file",
        headers=h,
        files={"file": (filename, data, mime)},
        data=form,
    )


async def retrieve(
    client: httpx.AsyncClient, h: Headers, dataset_id: str, query: str, **retrieval_model: Any
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": query}
    if retrieval_model:
        body["retrieval_model"] = retrieval_model
    r = await client.post(f"/v1/datasets/{dataset_id}/retrieve", headers=h, json=body)
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def pdf(text: str) -> bytes:
    """A minimal valid one-page PDF with `text` in Helvetica, offsets computed."""
    stream = f"BT /F1 18 Tf 50 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx(paragraphs: list[str]) -> bytes:
    import docx as python_docx

    d = python_docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def xlsx(rows: list[list[Any]]) -> bytes:
    import openpyxl  # type: ignore[import-untyped]  # no stubs installed

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
