"""The `openify` command: serve, db, app and key. Builds Settings once and passes them down."""

from __future__ import annotations

import argparse
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
    services = Services.build(settings, build_registries(settings.plugins))
    services.start()
    return services


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from openify.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=args.access_log, timeout_graceful_shutdown=5)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    services = _services(_settings(args))
    services.stop()
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
    _print(out)
    return 0


def cmd_app_export(args: argparse.Namespace) -> int:
    sys.stdout.write(_services(_settings(args)).apps.export(args.app_id))
    return 0


def cmd_app_list(args: argparse.Namespace) -> int:
    for a in _services(_settings(args)).apps.list():
        _print({"app_id": a.id, "name": a.name, "mode": a.mode})
    return 0


def cmd_app_delete(args: argparse.Namespace) -> int:
    _services(_settings(args)).apps.delete(args.app_id)
    _print({"result": "success"})
    return 0


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
        _print({"id": k.id, "type": k.type, "app_id": k.app_id, "hint": k.hint, "created_at": k.created_at})
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    _services(_settings(args)).keys.revoke(args.key)
    _print({"result": "success"})
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
    imp.set_defaults(func=cmd_app_import)
    exp = app.add_parser("export", parents=[common], help="print an app as DSL YAML")
    exp.add_argument("app_id")
    exp.set_defaults(func=cmd_app_export)
    app.add_parser("list", parents=[common], help="list apps").set_defaults(func=cmd_app_list)
    dele = app.add_parser("delete", parents=[common], help="delete an app and its keys")
    dele.add_argument("app_id")
    dele.set_defaults(func=cmd_app_delete)
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
