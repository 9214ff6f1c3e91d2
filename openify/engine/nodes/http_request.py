"""`http-request`: Dify's request fields rendered from the pool and sent through the guarded client port."""

from __future__ import annotations

import base64
import json
import mimetypes
import posixpath
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector
from openify.engine.variables import is_file

# Dify's HTTP_REQUEST_MAX_*_TIMEOUT defaults, seconds; a node's own timeouts are capped by them.
MAX_CONNECT_S, MAX_READ_S, MAX_WRITE_S = 10.0, 600.0, 600.0
_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_FILE_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/pdf", "application/zip")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Dify's `key:value` per line (the value may itself hold colons)."""
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition(":")
        if key.strip():
            pairs.append((key.strip(), value.strip()))
    return pairs


def _is_file_response(headers: Mapping[str, str]) -> bool:
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "").lower()
    disposition = {k.lower(): v for k, v in headers.items()}.get("content-disposition", "").lower()
    if "attachment" in disposition:
        return True
    if ctype.startswith(("text/", "application/json", "application/xml", "application/javascript")):
        return False
    return ctype.startswith(_FILE_TYPES)


def _file_name(disposition: str, url: str, mime: str) -> str:
    """A downloaded file's name: Content-Disposition's (RFC 6266, `filename*` included), else the URL's last
    segment; with an extension from its type when it has none, as Dify names its tool files."""
    header = EmailMessage()
    header["Content-Disposition"] = disposition
    name = (header.get_filename() if disposition else None) or urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    name = posixpath.basename(name.replace("\\", "/")) or "file"
    if not posixpath.splitext(name)[1]:
        name += mimetypes.guess_extension(mime) or ""
    return name


def _masked(ctx: NodeContext, headers: Mapping[str, str]) -> dict[str, str]:
    """Headers as logged in process_data: credentials and secret environment values starred out."""
    secrets = [
        str(v.get("value"))
        for v in ctx.execution.runner.graph.environment_variables
        if v.get("value_type") == "secret" and v.get("value")
    ]
    out = {}
    for k, v in headers.items():
        if k.lower() in ("authorization", "proxy-authorization") or any(sec in v for sec in secrets):
            v = v[:6] + "*" * max(len(v) - 6, 0) if k.lower() == "authorization" and " " in v[:7] else "*" * len(v)
        out[k] = v
    return out


class HttpRequestNode(Node):
    type = "http-request"

    async def run(self, ctx: NodeContext) -> NodeResult:
        d, pool = self.data, ctx.pool
        method = str(d.get("method") or "get").lower()
        if method not in _METHODS:
            raise NodeError(f"Invalid HTTP method: {method}", "InvalidHttpMethodError")
        url = pool.render(str(d.get("url") or "")).strip()
        if not url.startswith(("http://", "https://")):
            raise NodeError(f"URL must start with http:// or https://: {url!r}", "InvalidURLError")
        headers = dict(parse_pairs(pool.render(str(d.get("headers") or ""))))
        params = parse_pairs(pool.render(str(d.get("params") or "")))
        auth = d.get("authorization") or {}
        if isinstance(auth, Mapping) and auth.get("type") == "api-key":
            cfg = auth.get("config") or {}
            key = pool.render(str(cfg.get("api_key") or ""))
            kind = cfg.get("type") or "basic"
            if kind == "bearer":
                headers["Authorization"] = f"Bearer {key}"
            elif kind == "basic":
                token = key if ":" not in key else base64.b64encode(key.encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            elif kind == "custom":
                headers[str(cfg.get("header") or "Authorization")] = key
        kwargs: dict[str, Any] = {}
        body = d.get("body") or {}
        btype = str(body.get("type") or "none") if isinstance(body, Mapping) else "none"
        items = body.get("data") if isinstance(body, Mapping) else None
        if isinstance(items, str):  # old DSLs keep the body as one string
            items = [{"key": "", "type": "text", "value": items}]
        items = [i for i in items or [] if isinstance(i, Mapping)]
        lower = {k.lower() for k in headers}
        if btype == "json":
            raw = pool.render(str(items[0].get("value") or "")) if items else ""
            try:
                kwargs["json"] = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                raise NodeError(f"Invalid JSON body: {exc}", "RequestBodyError") from exc
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
        elif btype == "raw-text":
            kwargs["content"] = pool.render(str(items[0].get("value") or "")) if items else ""
            if "content-type" not in lower:
                headers["Content-Type"] = "text/plain"
        elif btype == "x-www-form-urlencoded":
            kwargs["data"] = {pool.render(str(i.get("key"))): pool.render(str(i.get("value") or "")) for i in items}
        elif btype == "form-data":
            data, files = {}, []
            for i in items:
                key = pool.render(str(i.get("key") or ""))
                if i.get("type") == "file":
                    for f in self._files(ctx, i.get("file")):
                        content = await ctx.require("files").read(f, ctx.run.system.user_id)
                        files.append(
                            (
                                key,
                                (
                                    str(f.get("filename") or "file"),
                                    content,
                                    str(f.get("mime_type") or "application/octet-stream"),
                                ),
                            )
                        )
                else:
                    data[key] = pool.render(str(i.get("value") or ""))
            kwargs["data"], kwargs["files"] = data, files or None
        elif btype == "binary":
            fs = self._files(ctx, items[0].get("file") if items else None)
            if fs:
                kwargs["content"] = await ctx.require("files").read(fs[0], ctx.run.system.user_id)
        timeout = d.get("timeout") or {}
        if not isinstance(timeout, Mapping):
            timeout = {}
        connect_s = min(float(timeout.get("connect") or MAX_CONNECT_S), MAX_CONNECT_S)
        read_s = min(float(timeout.get("read") or MAX_READ_S), MAX_READ_S)
        write_s = min(float(timeout.get("write") or MAX_WRITE_S), MAX_WRITE_S)
        client = ctx.require("http")
        request_info = {"method": method.upper(), "url": url, "headers": _masked(ctx, headers), "params": params}
        try:
            resp = await client.request(
                method.upper(),
                url,
                headers=headers,
                params=params,
                connect_timeout_s=connect_s,
                read_timeout_s=read_s,
                write_timeout_s=write_s,
                follow_redirects=True,
                verify=bool(d.get("ssl_verify", True)),
                **kwargs,
            )
        except Exception as exc:
            raise NodeError(str(exc) or type(exc).__name__, "HttpRequestNodeError") from exc
        rules = ctx.execution.runner.rules[self.id]
        if resp.status_code >= 400 and (rules.error_strategy or rules.max_retries):
            raise NodeError(f"Request failed with status code {resp.status_code}", "HTTPResponseCodeError")
        resp_headers = dict(resp.headers)
        files_out: list[Any] = []
        text = resp.text
        if _is_file_response(resp_headers) and ctx.ports.files is not None:
            got = {k.lower(): v for k, v in resp_headers.items()}
            mime = got.get("content-type", "application/octet-stream").split(";")[0].strip()
            name = _file_name(got.get("content-disposition", ""), url, mime)
            files_out.append(await ctx.ports.files.save(resp.body, name, mime))
            text = ""
        outputs = {"status_code": resp.status_code, "body": text, "headers": resp_headers, "files": files_out}
        return NodeResult(outputs=outputs, process_data={"request": request_info}, files=files_out)

    @staticmethod
    def _files(ctx: NodeContext, sel: Any) -> list[Mapping[str, Any]]:
        value = ctx.pool.get(selector(sel))
        if is_file(value) or isinstance(value, Mapping):
            return [value]
        return [v for v in value or [] if isinstance(v, Mapping)] if isinstance(value, list) else []


def register(r: Any) -> None:
    r.nodes.register(HttpRequestNode.type, HttpRequestNode)
