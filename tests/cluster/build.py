"""Build (or find) the control-plane binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
plus kustomize (renders k8s/ for the fixtures without kubectl).

All of them come from one Go module graph (tests/cluster/tools) in one `go build`, so they share the build
cache. The result is cached outside git, keyed by the Kubernetes release, the Go version and a hash of the
build inputs, so a second run (or CI on the same machine) rebuilds nothing. Prebuilt binaries in a folder
named by KUBEBUILDER_ASSETS (envtest's convention) are used instead when they are all there.

CLI: `python -m tests.cluster.build` prints the folder holding the binaries.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
KUBE_VERSION = "v1.36.3"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kustomize")
# Bounds a build that hangs (a dead module proxy, a stuck linker); a cold build takes ~7 min on 2 cores.
BUILD_TIMEOUT_S = 30 * 60


class GoMissingError(RuntimeError):
    """No Go toolchain: the caller decides whether that is a skip (a person) or a failure (CI)."""


class BuildFailedError(RuntimeError):
    """`go build` ran and failed."""


def find_go() -> Path | None:
    """The Go toolchain on PATH, else the usual /usr/local/go install."""
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    fallback = Path("/usr/local/go/bin/go")
    return fallback if fallback.is_file() else None


def prebuilt_dir() -> Path | None:
    """KUBEBUILDER_ASSETS, when it holds every binary we need."""
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    if not assets:
        return None
    folder = Path(assets)
    return folder if _has_all_binaries(folder) else None


def _has_all_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in BINARIES)


def go_version(go: Path) -> str:
    result = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def inputs_digest() -> str:
    """Hash of everything that shapes the binaries: go.mod, go.sum, the mains and the build flags."""
    digest = hashlib.sha256(" ".join(_build_flags()).encode())
    for path in sorted(TOOLS_DIR.rglob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in {"go.mod", "go.sum"}):
            digest.update(str(path.relative_to(TOOLS_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "code-exec" / "cluster"


def bin_dir_for(go: Path) -> Path:
    key = f"{KUBE_VERSION}-{go_version(go)}-{inputs_digest()}"
    return cache_root() / key / "bin"


def _build_flags() -> list[str]:
    # Without the version the apiserver reports v0.0.0-master, which clients treat as a skewed version;
    # -s -w drops debug info (a third of the size; nobody debugs these binaries here).
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    ldflags = f"-s -w -X {pkg}.gitVersion={KUBE_VERSION} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor}"
    return ["-trimpath", f"-ldflags={ldflags}"]


def _go_build(go: Path, out_dir: Path) -> None:
    command = [str(go), "build", *_build_flags(), "-o", f"{out_dir}/"]
    command += [f"./{name}" for name in BINARIES]
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    try:
        subprocess.run(command, cwd=TOOLS_DIR, env=env, check=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise BuildFailedError(f"go build failed with exit code {exc.returncode}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildFailedError(f"go build did not finish within {BUILD_TIMEOUT_S} s") from exc


def ensure_binaries() -> Path:
    """The folder with all four binaries, building them once when needed.

    Raises GoMissingError without Go, BuildFailedError when the build fails.
    """
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return prebuilt
    go = find_go()
    if go is None:
        raise GoMissingError(
            "the test control plane is built from source with Go >= 1.26 (not found on PATH or in "
            "/usr/local/go/bin); install Go, or point KUBEBUILDER_ASSETS at a folder holding "
            + ", ".join(BINARIES)
        )
    target = bin_dir_for(go)
    if _has_all_binaries(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (pytest and `make cluster-up` may race); the loser finds the result.
    with (target.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _has_all_binaries(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix="bin-", dir=target.parent))
        print(
            f"building {', '.join(BINARIES)} {KUBE_VERSION} into {target} (cold: ~4-7 min on 2 cores)",
            file=sys.stderr,
        )
        started_s = time.monotonic()
        try:
            _go_build(go, staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print(f"built in {time.monotonic() - started_s:.0f} s", file=sys.stderr)
    return target


def main() -> int:
    """Print the binaries' folder. Without Go: a note and exit 0 (the suite then skips), but exit 1 in CI."""
    try:
        print(ensure_binaries())
    except GoMissingError as exc:
        in_ci = os.environ.get("CI", "").lower() == "true"
        print(f"{'error' if in_ci else 'skipping the cluster build'}: {exc}", file=sys.stderr)
        return 1 if in_ci else 0
    except BuildFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
