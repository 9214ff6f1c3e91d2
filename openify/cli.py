"""The `openify` command: serve, db, app and key. Builds Settings once and passes them down."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openify.errors import OpenifyError
from openify.plugins import build_registries
from openify.services.container import Services
from openify.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return Settings(**overrides)


def _services(settings: Settings) -> Services:
    """Services for one command. Only `serve` starts them: a command registers no server instance (the next
    command would report it gone and fail running work in its name) and resumes no jobs."""
    services = Services.build(settings, build_registries(settings.plugins))
    services.open()
    atexit.register(services.close)
    return services


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from openify.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every outbound URL at INFO, query string included: an HTTP node's URL built from a secret
    # environment variable, a provider's key in a query. Its warnings still show.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    services = _services(_settings(args))
    _print({"result": "success", "database": services.db.engine.url.render_as_string(hide_password=True)})
    return 0


def cmd_app_import(args: argparse.Namespace) -> int:
    services = _services(_settings(args))
    try:
        text = Path(args.file).read_bytes()
    except OSError as exc:
        raise OpenifyError(f"cannot read {args.file}: {exc.strerror}") from None
    app, warnings = services.apps.import_dsl(text)
    token, _ = services.keys.create("app", app.id)
    out: dict[str, Any] = {"app_id": app.id, "api_key": token}
    if warnings:
        out["warnings"] = warnings

    async def plugins() -> None:  # one loop for checking and installing: plugin processes belong to it
        missing = await services.tools.missing_for_app(app)
        if missing and args.install_missing:
            out["installed"] = [
                {"source": src, "error": err} for src, err in await services.tools.install_missing(missing)
            ]
            missing = await services.tools.missing_for_app(app)
        if missing:
            out["missing_plugins"] = [m.as_dict() for m in missing]

    if args.install_missing:
        services.jobs.start()  # installs are jobs: this command works the queue until they end
    try:
        asyncio.run(plugins())
    finally:
        if args.install_missing:
            services.jobs.stop()
    _print(out)
    for m in out.get("missing_plugins") or []:
        where = f"{m['provider']}/{m['name']}"
        hint = f": {m['install']}" if m["install"] else ""
        sys.stderr.write(f"missing {m['kind'].replace('_', ' ')} {where}{hint}\n")
    return 0


def cmd_app_export(args: argparse.Namespace) -> int:
    sys.stdout.write(_services(_settings(args)).apps.export(args.app_id, args.include_secret))
    return 0


def cmd_app_list(args: argparse.Namespace) -> int:
    for a in _services(_settings(args)).apps.list():
        _print({"app_id": a.id, "name": a.name, "mode": a.mode})
    return 0


def cmd_app_delete(args: argparse.Namespace) -> int:
    _services(_settings(args)).apps.delete(args.app_id)
    _print({"result": "success"})
    return 0


def cmd_app_mcp(args: argparse.Namespace) -> int:
    """Publish an app as an MCP server (the console's /apps/{app_id}/server), or change or show it."""
    servers = _services(_settings(args))
    return _app_mcp(servers, args)


def _app_mcp(servers: Services, args: argparse.Namespace) -> int:
    app = servers.apps.get(args.app_id)
    params = dict(p.partition("=")[::2] for p in args.param) if args.param else None
    info = servers.mcp_servers.get(app)
    if info is None and args.enable:
        info = servers.mcp_servers.create(app, args.description, params or {})
    elif info is not None and (args.enable or args.disable or args.refresh or args.description or params):
        status = "active" if args.enable else "inactive" if args.disable else None
        info = servers.mcp_servers.update(app, args.description, params, status, refresh=args.refresh)
    if info is None:
        sys.stderr.write("the app is not published as an MCP server: add --enable\n")
        return 1
    path = f"/mcp/server/{info.server_code}/mcp"
    _print({"id": info.id, "server_code": info.server_code, "status": info.status, "path": path})
    return 0


def cmd_tools_mcp(args: argparse.Namespace) -> int:
    """MCP tool providers: add (lists the server's tools now), list, refresh, remove."""
    import asyncio

    services = _services(_settings(args))
    try:
        mcp = services.mcp_tools
        if args.mcp_command == "add":
            headers = dict(h.partition(":")[::2] for h in args.header or [])
            headers = {k.strip(): v.strip() for k, v in headers.items()}
            if bool(args.url) == bool(args.command):
                sys.stderr.write("give either a URL or --command\n")
                return 1
            added = mcp.add(args.identifier, args.url or "", args.name, headers, args.timeout, args.command or "")
            _print(asyncio.run(added))
        elif args.mcp_command == "list":
            for row in mcp.list():
                _print(row)
        elif args.mcp_command == "refresh":
            _print(asyncio.run(mcp.refresh(args.identifier)))
        else:
            mcp.remove(args.identifier)
            _print({"result": "success"})
        return 0
    except OpenifyError as exc:
        sys.stderr.write(f"{exc.detail}\n")
        return 1


def cmd_app_site(args: argparse.Namespace) -> int:
    from openify.services.sites import page_url

    enabled = True if args.enable else False if args.disable else None
    site, app = _services(_settings(args)).sites.configure(args.app_id, enabled)
    _print({"code": site.code, "url": page_url(site, app.mode), "enabled": site.enabled})
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    services = _services(_settings(args))
    token, info = services.keys.create("dataset") if args.dataset else services.keys.create("app", args.app)
    _print({"api_key": token, "id": info.id, "type": info.type, "app_id": info.app_id})
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    for k in _services(_settings(args)).keys.list(args.app):
        _print(
            {
                "id": k.id,
                "type": k.type,
                "app_id": k.app_id,
                "hint": k.hint,
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
            }
        )
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    _services(_settings(args)).keys.revoke(args.key)
    _print({"result": "success"})
    return 0


def cmd_plugin_install(args: argparse.Namespace) -> int:
    """Queue the install, work it here (the job runner of this process), print its progress, wait for the end."""
    import time

    services = _services(_settings(args))
    # The install is a job: this command works the job queue until it ends (beside any running server's workers).
    services.jobs.start()
    try:
        row = services.dify_plugins.install(args.source)
        seen = ""
        while row["status"] == "installing":
            if row["progress"] != seen:
                seen = row["progress"]
                sys.stderr.write(f"{row['plugin_id']}: {seen}\n")
            time.sleep(0.2)
            row = services.dify_plugins.get(row["plugin_id"])
        _print(row)
        return 0 if row["status"] == "installed" else 2
    finally:
        services.jobs.stop()


def cmd_plugin_list(args: argparse.Namespace) -> int:
    for row in _services(_settings(args)).dify_plugins.list():
        _print(row)
    return 0


def cmd_plugin_uninstall(args: argparse.Namespace) -> int:
    import asyncio

    asyncio.run(_services(_settings(args)).dify_plugins.uninstall(args.plugin_id))
    _print({"result": "success"})
    return 0


def cmd_plugin_credentials(args: argparse.Namespace) -> int:
    import asyncio

    values: dict[str, str] = {}
    for pair in args.values:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise OpenifyError(f"expected key=value, got {pair!r}")
        values[name] = value
    _print(asyncio.run(_services(_settings(args)).dify_plugins.set_credentials(args.provider, values)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="data directory (default ./.openify, or OPENIFY_DATA_DIR)")
    p = argparse.ArgumentParser(prog="openify", description="Openify: the Dify Service API, self-hosted.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="start the HTTP server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 5001)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="apply migrations").set_defaults(func=cmd_db_upgrade)

    app = sub.add_parser("app", help="apps").add_subparsers(dest="app_command", required=True)
    imp = app.add_parser("import", parents=[common], help="create an app from a Dify DSL file")
    imp.add_argument("file")
    imp.add_argument("--install-missing", action="store_true", help="install the Dify plugins the app needs")
    imp.set_defaults(func=cmd_app_import)
    exp = app.add_parser("export", parents=[common], help="print an app as DSL YAML")
    exp.add_argument("app_id")
    exp.add_argument(
        "--include-secret", action="store_true", help="write secret environment values (left out by default)"
    )
    exp.set_defaults(func=cmd_app_export)
    app.add_parser("list", parents=[common], help="list apps").set_defaults(func=cmd_app_list)
    dele = app.add_parser("delete", parents=[common], help="delete an app and its keys")
    dele.add_argument("app_id")
    dele.set_defaults(func=cmd_app_delete)
    mcp = app.add_parser("mcp", parents=[common], help="publish an app as an MCP server, or show or change it")
    mcp.add_argument("app_id")
    mcp_state = mcp.add_mutually_exclusive_group()
    mcp_state.add_argument("--enable", action="store_true", help="publish (or re-activate) the server")
    mcp_state.add_argument("--disable", action="store_true", help="deactivate the server; its code stops working")
    mcp.add_argument("--refresh", action="store_true", help="issue a new server code")
    mcp.add_argument("--description", help="the tool's description (default: the app's)")
    mcp.add_argument("--param", action="append", metavar="VAR=DESCRIPTION", help="describe an input (repeatable)")
    mcp.set_defaults(func=cmd_app_mcp)

    tools = sub.add_parser("tools", help="tool providers").add_subparsers(dest="tools_command", required=True)
    mcp_tools = tools.add_parser("mcp", help="MCP servers as tool providers").add_subparsers(
        dest="mcp_command", required=True
    )
    ma = mcp_tools.add_parser("add", parents=[common], help="add an MCP server (its tools are listed now)")
    ma.add_argument("identifier", help="the server_identifier DSLs name it by")
    ma.add_argument("url", nargs="?", help="streamable HTTP or SSE endpoint (a path ending in /sse speaks SSE)")
    ma.add_argument("--command", help="a stdio server's command line, run confined (instead of a URL)")
    ma.add_argument("--name", help="a display name (default: the identifier)")
    ma.add_argument("--header", action="append", metavar="K:V", help="an HTTP header sent to the server")
    ma.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per request (default 30)")
    mcp_tools.add_parser("list", parents=[common], help="list MCP tool providers")
    for verb in ("refresh", "remove"):
        mcp_tools.add_parser(verb, parents=[common], help=f"{verb} an MCP tool provider").add_argument("identifier")
    for action in mcp_tools.choices.values():
        action.set_defaults(func=cmd_tools_mcp)
    site = app.add_parser("site", parents=[common], help="show, enable or disable an app's web page")
    site.add_argument("app_id")
    onoff = site.add_mutually_exclusive_group()
    onoff.add_argument("--enable", action="store_true")
    onoff.add_argument("--disable", action="store_true")
    site.set_defaults(func=cmd_app_site)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    kc = key.add_parser("create", parents=[common], help="create a key (printed once)")
    which = kc.add_mutually_exclusive_group(required=True)
    which.add_argument("--app", metavar="APP_ID", help="an app key for this app")
    which.add_argument("--dataset", action="store_true", help="a dataset (knowledge) key")
    kc.set_defaults(func=cmd_key_create)
    kl = key.add_parser("list", parents=[common], help="list keys (hints only)")
    kl.add_argument("--app", metavar="APP_ID")
    kl.set_defaults(func=cmd_key_list)
    kr = key.add_parser("revoke", parents=[common], help="revoke a key, by token or id")
    kr.add_argument("key")
    kr.set_defaults(func=cmd_key_revoke)

    plugin = sub.add_parser("plugin", help="Dify plugins").add_subparsers(dest="plugin_command", required=True)
    pi = plugin.add_parser("install", parents=[common], help="install a .difypkg, a folder or author/name:version")
    pi.add_argument("source")
    pi.set_defaults(func=cmd_plugin_install)
    plugin.add_parser("list", parents=[common], help="list Dify plugins").set_defaults(func=cmd_plugin_list)
    pu = plugin.add_parser("uninstall", parents=[common], help="uninstall a Dify plugin (author/name)")
    pu.add_argument("plugin_id")
    pu.set_defaults(func=cmd_plugin_uninstall)
    pc = plugin.add_parser("credentials", parents=[common], help="store a tool provider's credentials")
    pc.add_argument("provider", help="author/name/provider, e.g. langgenius/tavily/tavily")
    pc.add_argument("values", nargs="+", metavar="KEY=VALUE")
    pc.set_defaults(func=cmd_plugin_credentials)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OpenifyError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
