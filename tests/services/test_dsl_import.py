"""Importing Dify DSL: all 25 real exports, every refusal reason, nothing written on refusal, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from openify.errors import DSLError
from openify.services.container import Services
from tests.conftest import DSL_DIR

REAL_EXPORTS = sorted(DSL_DIR.glob("*.yml"))


def _node_types(doc: dict) -> set[str]:  # type: ignore[type-arg]
    nodes = ((doc.get("workflow") or {}).get("graph") or {}).get("nodes") or []
    return {str(n["data"].get("type")) for n in nodes if n.get("type") != "custom-note"}


def test_there_are_25_real_exports() -> None:
    assert len(REAL_EXPORTS) == 25


@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name[:2])
def test_real_export_imports_or_names_what_is_missing(services: Services, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    missing = {t for t in _node_types(doc) if t not in services.registries.nodes}
    if not missing:
        app, _ = services.apps.import_dsl(path.read_text())
        assert app.mode == doc["app"]["mode"]
        assert app.name == doc["app"]["name"].strip()
        assert services.apps.get(app.id).mode == doc["app"]["mode"]
        return
    with pytest.raises(DSLError) as err:
        services.apps.import_dsl(path.read_text())
    for node_type in missing:
        assert repr(node_type) in err.value.detail
    assert services.apps.list() == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("app: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("version: 0.2\nkind: app\napp: {name: x, mode: chat}\n", "Invalid version type"),
        ("version: '9.0.0'\nkind: app\napp: {name: x, mode: chat}\n", "newer"),
        ("version: 'x.y'\nkind: app\napp: {name: x, mode: chat}\n", "cannot be read"),
        ("version: '0.1.0'\nkind: plugin\napp: {name: x, mode: chat}\n", "Unknown DSL kind 'plugin'"),
        ("version: '0.1.0'\nkind: app\n", "Missing app data"),
        ("version: '0.1.0'\nkind: app\napp: {name: x}\n", "Missing app mode"),
        ("version: '0.1.0'\nkind: app\napp: {name: x, mode: rag-pipeline}\n", "Unknown app mode 'rag-pipeline'"),
        ("version: '0.1.0'\nkind: app\napp: {name: x, mode: chat}\n", "model_config"),
        ("version: '0.1.0'\nkind: app\napp: {name: x, mode: workflow}\n", "workflow"),
        (
            "version: '0.1.0'\nkind: app\napp: {name: x, mode: workflow}\nworkflow:\n  graph:\n    nodes:\n"
            "    - id: '1'\n      data: {type: teleport, title: Beam}\n    edges: []\n",
            "'teleport'",
        ),
    ],
)
def test_bad_dsl_is_refused_naming_the_problem_and_creates_nothing(services: Services, text: str, needle: str) -> None:
    with pytest.raises(DSLError) as err:
        services.apps.import_dsl(text)
    assert needle in err.value.detail
    assert err.value.status == 400 and err.value.code == "invalid_param"
    assert services.apps.list() == []


@pytest.mark.parametrize(
    "name",
    [
        "22-chat-0.1.5-zhouyi-master-zh.yml",
        "23-agent-chat-0.3.1-pdf-translate-mcp-zh.yml",
        "25-completion-noversion-sql-creator.yml",
    ],
)
def test_export_imports_back_to_an_equal_app(services: Services, name: str) -> None:
    first, _ = services.apps.import_dsl((DSL_DIR / name).read_text())
    second, _ = services.apps.import_dsl(services.apps.export(first.id))
    a, b = services.apps.get(first.id), services.apps.get(second.id)
    for field in (
        "mode",
        "name",
        "description",
        "icon",
        "icon_type",
        "icon_background",
        "model_config_",
        "workflow",
        "dsl_version",
    ):
        assert getattr(a, field) == getattr(b, field), field
    assert a.id != b.id


def test_missing_version_reads_as_0_1_0(services: Services) -> None:
    app, _ = services.apps.import_dsl((DSL_DIR / "25-completion-noversion-sql-creator.yml").read_text())
    assert app.dsl_version == "0.1.0"


async def test_agent_app_tools_of_absent_sources_are_reported_not_refused(services: Services) -> None:
    app, warnings = services.apps.import_dsl((DSL_DIR / "23-agent-chat-0.3.1-pdf-translate-mcp-zh.yml").read_text())
    assert warnings == []
    missing = await services.tools.missing_for_app(app)
    assert ("tool", "pdftranslate2-mcp-server", "translate_pdf", "") in {
        (m.kind, m.provider, m.name, m.plugin) for m in missing
    }
    # An MCP server is added, not installed: the hint names the command that adds it.
    assert all(
        m.provider == "pdftranslate2-mcp-server" and m.install == "openify tools mcp add pdftranslate2-mcp-server URL"
        for m in missing
    )


@pytest.mark.parametrize("prefix", ["03", "11", "12", "14", "16"])
async def test_shared_exports_with_tools_import_and_name_their_missing_plugins(services: Services, prefix: str) -> None:
    path = next(DSL_DIR.glob(f"{prefix}-*.yml"))
    app, _ = services.apps.import_dsl(path.read_text())
    missing = {(m.kind, m.plugin): m for m in await services.tools.missing_for_app(app)}
    expected = {
        "03": {("tool", "langgenius/tavily"), ("tool", "langgenius/jina_tool")},
        "11": {("tool", "kalochin/pdf_process"), ("tool", "langgenius/feishu_spreadsheet")},
        "12": {("tool", "langgenius/duckduckgo")},  # its webscraper nodes are builtin: not missing
        "14": {("agent_strategy", "afeaad50-3ca8-4d6b-8e95-ca6993bb2951/agent")},
        "16": {("agent_strategy", "langgenius/agent"), ("tool", "langgenius/google")},
    }[prefix]
    assert set(missing) == expected
    if prefix == "11":  # the DSL's dependencies pin the version: the install command carries it
        pdf = missing[("tool", "kalochin/pdf_process")]
        assert pdf.install == (
            "openify plugin install kalochin/pdf_process:0.0.4@"
            "29c7b0927a11333044049de20657119779a06e0eb003b6c5cffaec07e5204332"
        )
    if prefix == "03":
        assert missing[("tool", "langgenius/tavily")].install == "openify plugin install langgenius/tavily"
