#!/usr/bin/env python3
"""Build the execute Lambda's code bundle without Docker: `make build` -> build/lambda.

pip installs the runtime dependencies from pyproject.toml as wheels for the Lambda platform (manylinux,
CPython 3.12) into a cache keyed by the dependency list, then the bundle is that plus functions/, the
runner program and every runners/<language>/language.json. Bytecode is precompiled by a 3.12
interpreter when one is found (Lambda's /var/task is read-only, so without .pyc every cold start
compiles in memory); `unchecked-hash` pycs stay valid whatever mtimes the deployment zip records.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build" / "lambda"
DEPS_CACHE = REPO_ROOT / "build" / "lambda-deps"
LAMBDA_PYTHON = "3.12"
# x86_64: the deployed bytes are the ones CI imports (see cdk/execute_function.py for the trade-off).
DEFAULT_PLATFORM = "manylinux2014_x86_64"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "*.md", "*.c")
# Never needed at run time inside Lambda; dropping them makes the bundle smaller and the cold start cheaper.
PRUNED_DIRS = ("__pycache__", "tests", "test")
# kubernetes/aio is the asyncio twin of the client (~40 MB); we use the synchronous client only and
# nothing outside kubernetes/aio imports it.
PRUNED_TOP_LEVEL = ("bin", "kubernetes/aio")


def runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [str(requirement) for requirement in project["dependencies"]]


def dependency_key(requirements: list[str], platform: str, python_version: str) -> str:
    payload = json.dumps([sorted(requirements), platform, python_version]).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def install_dependencies(
    requirements: list[str], platform: str, python_version: str, python: str | None
) -> Path:
    """pip --target for the Lambda platform, precompiled; reused while the dependency list is unchanged."""
    target = DEPS_CACHE / dependency_key(requirements, platform, python_version)
    target = target.with_name(target.name + ("-pyc" if python else ""))
    if (target / ".complete").exists():
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(staging), "--platform", platform, "--implementation", "cp",
        "--python-version", python_version, "--only-binary=:all:", *requirements,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    prune(staging)
    if python is not None:
        precompile(staging, python)
    (staging / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def prune(root: Path) -> None:
    for name in PRUNED_TOP_LEVEL:
        shutil.rmtree(root / name, ignore_errors=True)
    for pattern in PRUNED_DIRS:
        for path in sorted(root.rglob(pattern), reverse=True):
            if path.is_dir() and not path.parent.name.endswith(".dist-info"):
                shutil.rmtree(path, ignore_errors=True)


def copy_sources(bundle: Path) -> None:
    shutil.copytree(REPO_ROOT / "functions", bundle / "functions", ignore=IGNORED)
    runners = bundle / "runners"
    shutil.copytree(REPO_ROOT / "runners" / "runner", runners / "runner", ignore=IGNORED)
    for language_file in sorted((REPO_ROOT / "runners").glob("*/language.json")):
        (runners / language_file.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(language_file, runners / language_file.parent.name / language_file.name)


def find_lambda_python(python_version: str) -> str | None:
    """A real CPython of the Lambda's version (not a pyenv shim), to precompile bytecode."""
    candidates = [shutil.which(f"python{python_version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{python_version}.*/bin/python3"))]
    for candidate in candidates:
        if candidate and "shims" not in candidate and Path(candidate).exists():
            return candidate
    for candidate in candidates:
        if candidate:
            return candidate
    return None


def precompile(bundle: Path, python: str) -> None:
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(bundle)],
        check=True,
    )


def link_or_copy(source: str, destination: str) -> None:
    """Hard links make a rebuild cheap; nothing ever writes into a bundle's dependency files."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def build(out: Path, platform: str, python_version: str, *, compile_bytecode: bool) -> Path:
    python = find_lambda_python(python_version) if compile_bytecode else None
    deps = install_dependencies(runtime_dependencies(), platform, python_version, python)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(deps, staging, ignore=shutil.ignore_patterns(".complete"), copy_function=link_or_copy)
    copy_sources(staging)
    if python is not None:
        for folder in ("functions", "runners"):
            precompile(staging / folder, python)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def bundle_size_bytes(bundle: Path) -> int:
    return sum(path.stat().st_size for path in bundle.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--platform", default=DEFAULT_PLATFORM, help="pip --platform tag of the Lambda")
    parser.add_argument("--python-version", default=LAMBDA_PYTHON)
    parser.add_argument("--no-compile", action="store_true", help="skip precompiling bytecode")
    args = parser.parse_args(argv)
    bundle = build(args.out, args.platform, args.python_version, compile_bytecode=not args.no_compile)
    size_mb = bundle_size_bytes(bundle) / 1_000_000
    print(f"Lambda bundle: {bundle} ({size_mb:.1f} MB unzipped)")  # noqa: T201 - a build tool's report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
