"""The `openify` command as a user runs it: import, export, list, delete, keys; keys stored hashed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
import yaml

from tests.conftest import DSL_DIR


def run(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIFY_")}  # noqa: TID251
    env["OPENIFY_DATABASE_URL"] = database_url
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "openify.cli", *args, "--data-dir", str(data_dir)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_app_and_key_lifecycle(tmp_path: Path, database_url: str) -> None:
    src = DSL_DIR / "22-chat-0.1.5-zhouyi-master-zh.yml"
    r = run(tmp_path, database_url, "app", "import", str(src))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"app_id", "api_key"} and created["api_key"].startswith("app-")
    app_id, token = created["app_id"], created["api_key"]

    exported = run(tmp_path, database_url, "app", "export", app_id)
    assert exported.returncode == 0, exported.stderr
    assert yaml.safe_load(exported.stdout)["model_config"] == yaml.safe_load(src.read_text())["model_config"]
    again_file = tmp_path / "again.yml"
    again_file.write_text(exported.stdout)
    again = json.loads(run(tmp_path, database_url, "app", "import", str(again_file)).stdout)

    listed = [json.loads(x) for x in run(tmp_path, database_url, "app", "list").stdout.splitlines()]
    assert {a["app_id"] for a in listed} == {app_id, again["app_id"]}
    assert all(a["name"] == "周易大师" for a in listed)

    key = json.loads(run(tmp_path, database_url, "key", "create", "--app", app_id).stdout)
    ds = json.loads(run(tmp_path, database_url, "key", "create", "--dataset").stdout)
    assert key["api_key"].startswith("app-") and ds["api_key"].startswith("dataset-")
    assert len(key["api_key"]) - len("app-") >= 22  # >= 128 bits of base62

    keys = run(tmp_path, database_url, "key", "list").stdout
    assert token not in keys and key["api_key"] not in keys  # only hints are shown again

    # Only hashes are stored: no column of any row holds a token.
    engine = sa.create_engine(database_url)
    with engine.connect() as c:
        dump = json.dumps([list(map(str, row)) for row in c.execute(sa.text("SELECT * FROM api_keys"))])
    engine.dispose()
    for secret in (token, key["api_key"], ds["api_key"]):
        assert secret not in dump and secret[-20:] not in dump

    assert run(tmp_path, database_url, "key", "revoke", key["api_key"]).returncode == 0
    assert key["id"] not in run(tmp_path, database_url, "key", "list").stdout

    assert run(tmp_path, database_url, "app", "delete", app_id).returncode == 0
    left = [json.loads(x)["app_id"] for x in run(tmp_path, database_url, "app", "list").stdout.splitlines()]
    assert left == [again["app_id"]]


def test_refused_import_says_why_and_creates_nothing(tmp_path: Path, database_url: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: '0.1.0'\nkind: app\napp: {name: x, mode: spaceship}\n")
    r = run(tmp_path, database_url, "app", "import", str(bad))
    assert r.returncode != 0
    assert "Unknown app mode 'spaceship'" in r.stderr and r.stdout == ""
    assert run(tmp_path, database_url, "app", "list").stdout == ""


def test_db_upgrade(tmp_path: Path, database_url: str) -> None:
    r = run(tmp_path, database_url, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    engine = sa.create_engine(database_url)
    assert {"apps", "api_keys", "end_users"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_commands_register_no_server_instance(tmp_path: Path, database_url: str) -> None:
    """A command is not a server: it leaves no instance row that the next command would report as gone."""
    first = run(tmp_path, database_url, "app", "list")
    second = run(tmp_path, database_url, "key", "list")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "gone" not in second.stderr, second.stderr
    engine = sa.create_engine(database_url)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM server_instances")).scalar_one() == 0
    engine.dispose()
