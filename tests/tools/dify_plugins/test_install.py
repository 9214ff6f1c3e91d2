"""Installing Dify plugins as a user does: the console API (folder, .difypkg upload, marketplace id against a
local stand-in marketplace), the CLI, and the failures that must name their cause."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from openify.app import create_app
from openify.services.dify_plugins import INSTALL_JOB
from openify.settings import DifyPluginSettings, Settings
from openify.storage.tables import DifyPlugin, Job
from openify.storage.tables.base import utcnow
from openify.tools.base import TextMessage, ToolCall, ToolRef
from tests.tools.dify_plugins.conftest import OFFICIAL, OWN

# Real plugin processes (and, for the first test of a session, installing them) on a shared 2-core machine.
pytestmark = pytest.mark.timeout(300)

ADMIN = {"Authorization": "Bearer " + "a" * 32}


def difypkg(folder: Path) -> bytes:
    """A .difypkg as Dify's CLI packs it: the plugin folder, zipped."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


class Marketplace:
    """A stand-in of marketplace.dify.ai's download endpoint, serving one package on loopback."""

    def __init__(self, packages: dict[str, bytes]) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                ident = self.path.partition("unique_identifier=")[2].replace("%2F", "/").replace("%3A", ":")
                ident = ident.replace("%40", "@")
                body = packages.get(ident.split("@")[0])
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def marketplace() -> Iterator[Marketplace]:
    m = Marketplace({"langgenius/json_process:0.0.3": difypkg(OFFICIAL["json_process"])})
    yield m
    m.close()


@pytest.fixture
async def console(
    tmp_path: Path, database_url: str, marketplace: Marketplace
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=SecretStr("a" * 32),
        dify_plugins=DifyPluginSettings(marketplace_url=marketplace.url, marketplace_timeout_s=3),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
            yield c, app


async def settled(client: httpx.AsyncClient, plugin_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = await client.get(f"/console/api/dify-plugins/{plugin_id}", headers=ADMIN)
        assert r.status_code == 200, r.text
        if r.json()["status"] != "installing":
            return dict(r.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"{plugin_id} still installing")


async def test_install_from_folder_package_and_marketplace_then_uninstall(
    console: tuple[httpx.AsyncClient, FastAPI], marketplace: Marketplace
) -> None:
    client, app = console
    r = await client.post("/console/api/dify-plugins/install", headers=ADMIN, json={"source": str(OFFICIAL["maths"])})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "installing"
    maths = await settled(client, "langgenius/maths")
    assert maths["status"] == "installed", maths
    assert maths["tool_providers"] == ["langgenius/maths/maths"] and maths["version"] == "0.0.8"

    package = difypkg(OFFICIAL["regex"])
    r = await client.post(
        "/console/api/dify-plugins/install", headers=ADMIN, files={"package": ("regex.difypkg", package)}
    )
    assert r.status_code == 202, r.text
    assert (await settled(client, "langgenius/regex"))["status"] == "installed"

    r = await client.post(
        "/console/api/dify-plugins/install", headers=ADMIN, json={"source": "langgenius/json_process:0.0.3@0a1b2c3d"}
    )
    assert r.status_code == 202, r.text
    assert (await settled(client, "langgenius/json_process"))["status"] == "installed"
    assert "unique_identifier=langgenius%2Fjson_process%3A0.0.3%400a1b2c3d" in marketplace.requests[-1]

    listed = (await client.get("/console/api/dify-plugins", headers=ADMIN)).json()["data"]
    assert [p["plugin_id"] for p in listed] == ["langgenius/json_process", "langgenius/maths", "langgenius/regex"]

    # Installed means runnable: the tool answers through the server's tool manager.
    services = app.state.services
    ref = ToolRef("plugin", "langgenius/maths/maths", "eval_expression")
    out = [m async for m in services.tools.call(ref, {"expression": "1+1"}, ToolCall(user_id="u"))]
    assert out == [TextMessage('The result of the expression "1+1" is 2')]

    root = Path(services.settings.data_dir) / "dify_plugins" / "langgenius" / "maths"
    assert (root / "0.0.8" / "venv").is_dir()
    assert (await client.delete("/console/api/dify-plugins/langgenius/maths", headers=ADMIN)).status_code == 204
    assert not (root / "0.0.8").exists()
    assert (await client.get("/console/api/dify-plugins/langgenius/maths", headers=ADMIN)).status_code == 404
    assert services.dify_plugins.source.runtime.running() == []  # its process was stopped


async def test_failures_name_their_cause(console: tuple[httpx.AsyncClient, FastAPI], tmp_path: Path) -> None:
    client, app = console
    bad = tmp_path / "bad"
    shutil.copytree(OWN / "everything", bad)
    manifest = (bad / "manifest.yaml").read_text().replace("type: plugin", "type: bundle")
    (bad / "manifest.yaml").write_text(manifest)
    r = await client.post("/console/api/dify-plugins/install", headers=ADMIN, json={"source": str(bad)})
    assert r.status_code == 400 and r.json()["code"] == "invalid_plugin", r.text
    assert "bad manifest: type" in r.json()["message"]

    (bad / "manifest.yaml").write_text(manifest.replace("type: bundle", "type: plugin"))
    (bad / "requirements.txt").write_text("dify_plugin>=0.9.0\nopenify-no-such-package-zz9==1.0\n")
    r = await client.post("/console/api/dify-plugins/install", headers=ADMIN, json={"source": str(bad)})
    assert r.status_code == 202, r.text
    failed = await settled(client, "openify-tests/everything")
    assert failed["status"] == "failed"
    assert "missing wheel" in failed["error"] and "openify-no-such-package-zz9" in failed["error"], failed
    leftovers = list((Path(app.state.services.settings.data_dir) / "dify_plugins").rglob("*.partial"))
    assert leftovers == []  # a failed install leaves no half-made folder

    r = await client.post(
        "/console/api/dify-plugins/install", headers=ADMIN, json={"source": "langgenius/nothere:1.0.0"}
    )
    assert (await settled(client, "langgenius/nothere"))["error"].startswith("the marketplace at")

    r = await client.post("/console/api/dify-plugins/install", headers=ADMIN, json={"source": "not a plugin"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_plugin"
    assert (await client.get("/console/api/dify-plugins")).status_code == 401  # admin only


def test_cli_install_list_credentials_uninstall(tmp_path: Path) -> None:
    # SQLite only: the console test above covers both databases; this one is about the command.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIFY_")}  # noqa: TID251
    env |= {
        "OPENIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "OPENIFY_DIFY_PLUGINS__MARKETPLACE_URL": "http://127.0.0.1:9",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [sys.executable, "-m", "openify.cli", "plugin", *args, "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    started = time.monotonic()
    unreachable = run("install", "langgenius/tavily:0.0.1")
    assert unreachable.returncode == 2 and "not reachable" in unreachable.stdout, unreachable
    assert time.monotonic() - started < 30  # fails at once, never hangs

    done = run("install", str(OWN / "everything"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "installed"
    assert "installing dependencies" in done.stderr  # progress was shown

    creds = run("credentials", "openify-tests/everything/everything", "api_key=sk-秘密")
    assert creds.returncode == 0, creds.stderr
    assert "秘密" not in creds.stdout and json.loads(creds.stdout)["credentials"] == ["api_key"]

    listed = [json.loads(line) for line in run("list").stdout.splitlines()]
    assert [(p["plugin_id"], p["status"]) for p in listed] == [
        ("langgenius/tavily", "failed"),
        ("openify-tests/everything", "installed"),
    ]
    assert run("uninstall", "openify-tests/everything").returncode == 0
    assert "everything" not in run("list").stdout


async def test_an_install_cut_off_by_a_killed_server_is_resumed(console: tuple[httpx.AsyncClient, FastAPI]) -> None:
    """What a server killed mid-install leaves: the job `running` under a lapsed lease, the plugin `installing`,
    a half-made folder. The next server's job runner claims the job again; the installer starts over."""
    client, app = console
    services = app.state.services
    partial = Path(services.settings.data_dir) / "dify_plugins" / "langgenius" / "maths" / "0.0.8.partial"
    (partial / "venv").mkdir(parents=True)
    (partial / "venv" / "half-written").write_text("x")
    plugin_id = str(uuid.uuid4())
    with services.db.session() as s:
        s.add(DifyPlugin(id=plugin_id, plugin_key="langgenius/maths", source=str(OFFICIAL["maths"]),
                         status="installing", progress="installing dependencies", declarations={}))  # fmt: skip
        payload = {"plugin_id": plugin_id, "source": str(OFFICIAL["maths"])}
        s.add(Job(id=str(uuid.uuid4()), kind=INSTALL_JOB, payload=payload, status="running", attempts=1,
                  claim_token="dead-server",
                  lease_expires_at=utcnow() - timedelta(seconds=5)))  # fmt: skip
    resumed = await settled(client, "langgenius/maths")
    assert resumed["status"] == "installed", resumed
    assert not partial.exists() and (partial.parent / "0.0.8" / "installed.json").is_file()
