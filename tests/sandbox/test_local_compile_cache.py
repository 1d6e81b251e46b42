"""The compile cache: keyed by everything the output depends on, bounded, and out of every program's reach."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.backends.local.boxes import ArtifactLimits
from functions.backends.local.compile_cache import CompileCache, cache_key
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.results import build_response
from functions.core.spec import prepare_run
from functions.core.verdicts import Verdict
from functions.settings import DEFAULT_RUNNERS_DIR
from functions.wiring import sync_policy
from tests.report_factories import process
from tests.sandbox_support import assert_nothing_left, sandbox_settings

REGISTRY = load_registry(DEFAULT_RUNNERS_DIR)


def _task(code: str = "int main() {}", language: str = "cpp"):  # type: ignore[no-untyped-def]
    request = ExecuteRequest.model_validate({"language": language, "code": code, "encoding": "text"})
    from functions.settings import Settings

    return prepare_run(request, REGISTRY, sync_policy(Settings())).task


def test_the_key_changes_with_what_the_output_depends_on() -> None:
    task = _task()
    assert task.compile is not None
    base = cache_key(task, "gcc-12.2.0")
    assert cache_key(_task(), "gcc-12.2.0") == base  # same source, same toolchain
    assert cache_key(task, "gcc-12.3.0") != base  # another toolchain
    flags = task.model_copy(
        update={"compile": task.compile.model_copy(update={"argv": (*task.compile.argv, "-O3")})}
    )
    assert cache_key(flags, "gcc-12.2.0") != base  # another flag
    assert cache_key(_task("int main() { return 0; }"), "gcc-12.2.0") != base  # another source
    assert cache_key(task.model_copy(update={"env": {"X": "1"}}), "gcc-12.2.0") != base  # another environment


def _artifact(root: Path, name: str, size: int) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "main").write_bytes(b"x" * size)
    return directory


def test_least_recently_used_entries_are_evicted(tmp_path: Path) -> None:
    # Given a cache that holds two entries of 1000 bytes (and their reports), not three
    cache = CompileCache(tmp_path / "cache", max_bytes=3500)
    report = process()
    for name in ("a", "b"):
        cache.put(name, _artifact(tmp_path, name, 1000), report)
    assert cache.get("a") is not None  # "a" is now more recent than "b"
    # When a third arrives
    cache.put("c", _artifact(tmp_path, "c", 1000), report)
    # Then the least recently used one went
    assert (cache.get("a") is not None, cache.get("b") is None, cache.get("c") is not None) == (
        True,
        True,
        True,
    )


def test_a_process_counts_the_entries_other_processes_stored(tmp_path: Path) -> None:
    # Given two serving processes' caches over one directory that holds two entries, not three
    root = tmp_path / "cache"
    first, second = CompileCache(root, max_bytes=3500), CompileCache(root, max_bytes=3500)
    report = process()
    for name in ("a", "b"):
        first.put(name, _artifact(tmp_path, name, 1000), report)

    # When the other process stores a third
    second.put("c", _artifact(tmp_path, "c", 1000), report)

    # Then it counted the first's entries and evicted the least recently used of all
    assert (first.get("a") is None, first.get("b") is not None, second.get("c") is not None) == (
        True,
        True,
        True,
    )


def test_a_store_leaves_the_callers_copy_even_when_it_is_evicted_at_once(tmp_path: Path) -> None:
    # Given a cache smaller than the compile output about to be stored
    cache = CompileCache(tmp_path / "cache", max_bytes=500)
    artifacts = _artifact(tmp_path, "big", 1000)

    # When it is stored (and, alone over the bound, evicted straight away)
    cache.put("big", artifacts, process())

    # Then the cache does not keep it, and the run that compiled it still has every byte of its own copy
    assert cache.get("big") is None
    assert (artifacts / "main").read_bytes() == b"x" * 1000


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[LocalBackend]:
    settings = sandbox_settings(local_compile_cache_mb=getattr(request, "param", 16))
    backend = create_backend(settings)
    yield backend
    backend.close()
    assert_nothing_left(backend.host, settings)


def _execute(backend: LocalBackend, code: str) -> ExecuteResponse:
    from functions.settings import Settings

    request = ExecuteRequest.model_validate({"language": "cpp", "code": code, "encoding": "text"})
    prepared = prepare_run(request, REGISTRY, sync_policy(Settings()))
    return build_response(prepared.plan, backend.run(prepared.task, budget_s=60.0))


TAMPER = r"""
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
int main() {
    int fd = open("/box/main", O_WRONLY);
    if (fd >= 0 && write(fd, "\x7f" "ELF-tampered", 12) > 0) puts("WROTE");
    if (unlink("/box/main") == 0) puts("UNLINKED");
    if (chmod("/box/main", 0777) == 0) puts("CHMOD");
    if (rename("/box/main", "/box/other") == 0) puts("RENAMED");
    puts("original");
}
"""


@pytest.mark.sandbox
def test_a_repeated_source_skips_the_compiler_and_cannot_be_tampered_with(backend: LocalBackend) -> None:
    # Given a program that tries to rewrite its own binary, run once
    first = _execute(backend, TAMPER)
    assert backend.runner.compile_cache is not None
    entries = [
        entry for entry in backend.runner.compile_cache.root.iterdir() if not entry.name.startswith(".")
    ]
    binary = entries[0] / "files" / "main"
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    # When the same source runs again
    second = _execute(backend, TAMPER)
    # Then the second skipped the compiler, ran the very same binary, and no attempt touched it
    assert (first.verdict, second.verdict) == (Verdict.ACCEPTED, Verdict.ACCEPTED)
    assert (first.compile_cached, second.compile_cached) == (False, True)
    assert first.stdout == second.stdout == "original\n"
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == digest


# Three megabytes of initialised data: a binary larger than a one-megabyte cache.
LARGE_BINARY = "static volatile char blob[3 << 20] = {1};\nint main() { return blob[0] - 1; }\n"


@pytest.mark.sandbox
@pytest.mark.parametrize("backend", [1], indirect=True, ids=["cache-of-1mb"])
def test_a_compile_output_larger_than_the_cache_still_runs(backend: LocalBackend) -> None:
    # Given a cache smaller than what the compiler makes of a source
    # When that source runs twice
    first, second = _execute(backend, LARGE_BINARY), _execute(backend, LARGE_BINARY)
    # Then both runs ran their binary (the cache could not keep it, so both compiled)
    assert (first.verdict, second.verdict) == (Verdict.ACCEPTED, Verdict.ACCEPTED)
    assert (first.compile_cached, second.compile_cached) == (False, False)


@pytest.mark.sandbox
def test_a_compile_output_beyond_the_artifact_limits_is_a_compilation_error(backend: LocalBackend) -> None:
    # Given a backend that keeps at most one file of a compile (the compiler leaves the source and a binary)
    backend.runner.artifact_limits = ArtifactLimits(max_files=1, max_total_bytes=1 << 20)
    # When a source compiles
    response = _execute(backend, "int main() {}")
    # Then the source's outcome is a compilation error that says why, not a fault of the service
    assert response.verdict == Verdict.COMPILATION_ERROR
    assert "the compile step's output was refused: the compiler left 2 files" in response.compile_output
