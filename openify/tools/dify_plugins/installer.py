"""Installing a Dify plugin: its source (a `.difypkg`, a folder, a marketplace id), its manifest, its own
virtual environment on a Python >= 3.12 with its declared dependencies.

A plugin is installed into `<root>/<author>/<name>/<version>/` (`src/` its files, `venv/`, `work/` its
writable folder, `installed.json` what was installed). The folder is built as `<version>.partial` and
renamed only when complete, so a server killed half-way leaves a `.partial` that the next attempt removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openify.errors import OpenifyError
from openify.tools.dify_plugins.package import BadDifyPlugin, read_declarations, read_manifest

Progress = Callable[[str], None]
MARKETPLACE_ID = re.compile(
    r"^(?P<key>[a-z0-9_-]{1,128}/[a-z0-9_-]{1,128}):(?P<version>[\w.\-]{1,64})(@(?P<hash>[0-9a-f]{6,128}))?$"
)
_MAX_PACKAGE_BYTES = 200 * 1024 * 1024  # the marketplace's own package limit is 50 MB unpacked
_SKIP = shutil.ignore_patterns(".venv", "venv", ".git", "__pycache__", "*.pyc", ".env")


class DifyPluginInstallError(OpenifyError):
    """Installing a Dify plugin failed for a reason outside its package: no Python >= 3.12, a missing wheel, an
    unreachable marketplace."""

    code, status, message = "plugin_install_failed", 400, "The plugin could not be installed."


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    """An installed plugin: where its files, environment and working folder are, and what it declares."""

    key: str  # author/name
    version: str
    root: Path
    entrypoint: str
    manifest: dict[str, Any] = field(hash=False, compare=False)
    declarations: dict[str, Any] = field(hash=False, compare=False)

    @property
    def identifier(self) -> str:
        return f"{self.key}:{self.version}"

    @property
    def source_dir(self) -> Path:
        return self.root / "src"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def permissions(self) -> dict[str, Any]:
        return dict((self.manifest.get("resource") or {}).get("permission") or {})


def load_installed(root: Path) -> InstalledPlugin:
    """The plugin installed at `root` (read from its `installed.json`)."""
    data = json.loads((root / "installed.json").read_text(encoding="utf-8"))
    return InstalledPlugin(
        key=data["key"],
        version=data["version"],
        root=root,
        entrypoint=data["entrypoint"],
        manifest=data["manifest"],
        declarations=data["declarations"],
    )


# ---------------------------------------------------------------------------------------------- Python


def find_python(configured: str | None) -> Path:
    """A Python >= 3.12 for plugin environments: the configured one, else python3.13/3.12 on PATH, else pyenv's."""
    candidates: list[str] = []
    if configured:
        candidates.append(configured)
    else:
        candidates += [p for name in ("python3.13", "python3.12") if (p := shutil.which(name))]
        pyenv = Path(os.path.expanduser("~/.pyenv/versions"))
        if pyenv.is_dir():
            candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob("3.1[2-9]*"), reverse=True)]
        candidates += _uv_pythons()  # `uv python install 3.12` puts one where PATH may not reach
    for candidate in candidates:
        if _python_version(candidate) >= (3, 12):
            return Path(candidate)
    if configured:
        raise DifyPluginInstallError(f"OPENIFY_PLUGINS__PYTHON={configured} is not a Python >= 3.12")
    raise DifyPluginInstallError(
        "Dify plugins need Python >= 3.12 and none was found: set OPENIFY_PLUGINS__PYTHON (see README, 'Dify plugins')"
    )


def _uv_pythons() -> list[str]:
    uv = _uv()
    if uv is None:
        return []
    try:
        found = subprocess.run(  # noqa: S603 - uv's own lookup, no shell
            [uv, "python", "find", "--no-project", ">=3.12"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [found.stdout.strip()] if found.returncode == 0 and found.stdout.strip() else []


def _python_version(python: str) -> tuple[int, int]:
    try:
        out = subprocess.run(  # noqa: S603 - a configured or found interpreter, no shell
            [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=10
        )
        major, minor = out.stdout.split()
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.SubprocessError):
        return (0, 0)


def _uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # the `uv` wheel ships its binary

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


# ---------------------------------------------------------------------------------------------- sources


def fetch_source(source: str, scratch: Path, marketplace_url: str, timeout_s: float) -> Path:
    """The plugin folder a source names: a folder as is, a `.difypkg` unpacked, a marketplace id downloaded."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        return _unpack(path, scratch / "package")
    match = MARKETPLACE_ID.match(source)
    if match is None:
        raise BadDifyPlugin(
            f"{source!r} is neither a plugin folder, a .difypkg file nor a marketplace id (author/name:version[@hash])"
        )
    package = scratch / "download.difypkg"
    _download(source, marketplace_url, package, timeout_s)
    return _unpack(package, scratch / "package")


def _download(identifier: str, marketplace_url: str, dest: Path, timeout_s: float) -> None:
    """GET the marketplace's package (Dify: `/api/v1/plugins/download?unique_identifier=`), bounded in time and size."""
    url = f"{marketplace_url.rstrip('/')}/api/v1/plugins/download"
    try:
        with (
            httpx.stream("GET", url, params={"unique_identifier": identifier}, timeout=timeout_s) as r,
            dest.open("wb") as out,
        ):
            if r.status_code != 200:
                raise DifyPluginInstallError(
                    f"the marketplace at {marketplace_url} has no {identifier} (HTTP {r.status_code})"
                )
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > _MAX_PACKAGE_BYTES:
                    raise DifyPluginInstallError(f"{identifier} is larger than {_MAX_PACKAGE_BYTES >> 20} MB")
                out.write(chunk)
    except httpx.HTTPError as e:
        raise DifyPluginInstallError(
            f"the marketplace at {marketplace_url} is not reachable ({type(e).__name__}); "
            "install from a .difypkg file or a folder instead"
        ) from None


def _unpack(package: Path, dest: Path) -> Path:
    """Unpack a `.difypkg` (a zip) safely: no path outside `dest`, bounded size."""
    try:
        with zipfile.ZipFile(package) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > _MAX_PACKAGE_BYTES:
                raise BadDifyPlugin(f"{package.name} unpacks to more than {_MAX_PACKAGE_BYTES >> 20} MB")
            for info in z.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise BadDifyPlugin(f"{package.name} has a file outside the package: {info.filename!r}")
            z.extractall(dest)
    except zipfile.BadZipFile:
        raise BadDifyPlugin(f"{package.name} is not a .difypkg (zip) file") from None
    return dest


# ---------------------------------------------------------------------------------------------- install


def install(
    folder: Path,
    root: Path,
    python: Path,
    progress: Progress,
    timeout_s: float = 900.0,
    env: dict[str, str] | None = None,
) -> InstalledPlugin:
    """Validate, copy and give the plugin at `folder` its environment under `root`; idempotent (re-run resumes)."""
    progress("validating manifest")
    manifest = read_manifest(folder)
    declarations = read_declarations(folder, manifest)
    final = root / manifest.author / manifest.name / manifest.version
    if (final / "installed.json").is_file():
        progress("already installed")
        return load_installed(final)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a half-made attempt of a killed server
    try:
        progress("copying files")
        shutil.copytree(folder, partial / "src", ignore=_SKIP)
        (partial / "work").mkdir()
        progress("creating environment")
        _make_env(partial / "src", partial / "venv", python, progress, timeout_s, env or {})
        record = {
            "key": manifest.key,
            "version": manifest.version,
            "entrypoint": manifest.meta.runner.entrypoint,
            "manifest": manifest.model_dump(mode="json"),
            "declarations": declarations,
        }
        (partial / "installed.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    progress("installed")
    return load_installed(final)


def _make_env(
    src: Path, venv: Path, python: Path, progress: Progress, timeout_s: float, passed: dict[str, str]
) -> None:
    uv = _uv()
    lock, pyproject, requirements = src / "uv.lock", src / "pyproject.toml", src / "requirements.txt"
    if not (pyproject.is_file() or requirements.is_file()):
        raise BadDifyPlugin("the plugin has no requirements.txt or pyproject.toml")
    # A small fixed environment: build backends of sdists are third-party code and see no server secrets.
    tool_dir = str(Path(uv).parent) if uv else str(python.parent)
    env = {"PATH": f"{tool_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8", **passed}
    venv_python = str(venv / "bin" / "python")
    if uv:
        _run([uv, "venv", "-q", "--python", str(python), str(venv)], src, env, timeout_s)
        progress("installing dependencies")
        if lock.is_file() and pyproject.is_file():
            # The lock pins what the author tested with; --no-install-project: the plugin runs from src/.
            sync_env = {**env, "UV_PROJECT_ENVIRONMENT": str(venv)}
            cmd = [
                uv,
                "sync",
                "-q",
                "--compile-bytecode",
                "--frozen",
                "--no-dev",
                "--no-install-project",
                "--python",
                venv_python,
            ]
            _run(cmd, src, sync_env, timeout_s)
        else:
            spec = requirements if requirements.is_file() else pyproject
            _run(
                [uv, "pip", "install", "-q", "--compile-bytecode", "--python", venv_python, "-r", str(spec)],
                src,
                env,
                timeout_s,
            )
    else:
        _run([str(python), "-m", "venv", str(venv)], src, env, timeout_s)
        progress("installing dependencies")
        pip = [venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if requirements.is_file():
            _run([*pip, "-r", str(requirements)], src, env, timeout_s)
        else:
            import tomllib

            deps = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("dependencies", [])
            if deps:
                _run([*pip, *deps], src, env, timeout_s)
    # Compiled once here: a cold start then loads bytecode instead of compiling the SDK's imports (~2 s).
    _run([venv_python, "-m", "compileall", "-q", str(src)], src, env, timeout_s)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> None:
    with tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise DifyPluginInstallError(f"installing dependencies took longer than {timeout_s:g} s") from None
        if done.returncode == 0:
            return
        err.seek(0)
        text = err.read().decode(errors="replace")
    found = re.search(
        r"\b([A-Za-z0-9_.\-]+)(?:[<>=!~][^\s]*)? was not found in the package registry", text
    ) or re.search(r"(?:No matching distribution found for|satisfies the requirement) ([^\s]+)", text)
    if found:
        raise DifyPluginInstallError(f"missing wheel: no distribution of {found.group(1)} could be found")
    tail = " ".join(text.strip().splitlines()[-3:])[:500]
    raise DifyPluginInstallError(f"installing dependencies failed: {tail}")
