"""Content-addressed cache of compile outputs: a repeated C++ or Java source skips its compiler.

The key is everything the output depends on: the language, the toolchain (its binary's identity and
version), the compile command with its flags, the environment, the source's file name and bytes. An entry
is the directory of files the compile step left (collected by the backend before any program ran) plus the
compile step's report (its warnings are shown again). Entries belong to the service and are read-only; run
sandboxes get hard links to them through a read-only bind, so no program can change what a later run of
the same source executes. Size is bounded: least recently used entries go first.

Each process keeps the sizes it knows in memory (one walk of the cache when it first stores, then only the
entries it adds), so a store costs the same with ten entries or ten thousand. Serving processes share the
directory: every `RESCAN_EVERY` stores a process walks it again to count the others' entries, so the cache
outgrows its bound by at most what the processes stored between two walks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from functions.backends.local.boxes import link_files, make_private_dir
from functions.core.protocol import ProcessReport, RunnerTask

logger = logging.getLogger(__name__)

REPORT_FILE = "compile-report.json"
_ENTRY_FILES = "files"
RESCAN_EVERY = 64


@dataclass(frozen=True, slots=True)
class CachedCompile:
    artifacts: Path
    report: ProcessReport


def cache_key(task: RunnerTask, toolchain: str) -> str:
    assert task.compile is not None  # noqa: S101 - only compiled tasks are cached
    material = {
        "language": task.language.name,
        "toolchain": toolchain,
        "argv": task.compile.argv,
        "env": sorted(task.env.items()),
        "file": task.source_file_name,
        "source": hashlib.sha256(task.source_b64.encode("ascii")).hexdigest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class CompileCache:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = make_private_dir(root, 0o711)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # entry name -> bytes, as this process knows them
        self._stores_until_scan = 0

    def get(self, key: str) -> CachedCompile | None:
        entry = self.root / key
        try:
            report = ProcessReport.model_validate_json((entry / REPORT_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        _touch(entry)
        return CachedCompile(artifacts=entry / _ENTRY_FILES, report=report)

    def put(self, key: str, artifacts: Path, report: ProcessReport) -> None:
        """Store hard links to `artifacts` (a directory on the cache's file system); the caller keeps its own.

        The caller's run uses its own links, so an eviction (by a later store of this or another serving
        process, or of this very entry when it alone outgrows the bound) never pulls files from under it.
        Two runs compiling the same source at once both arrive here; the first rename wins.
        """
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(mode=0o755)
        (staging / REPORT_FILE).write_text(report.model_dump_json(), encoding="utf-8")
        try:
            (staging / _ENTRY_FILES).mkdir(mode=0o755)
            link_files(artifacts, staging / _ENTRY_FILES)
            staging.rename(self.root / key)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return
        _touch(self.root / key)
        self._account(key)

    def _account(self, key: str) -> None:
        """Count the new entry, then evict least recently used entries while the cache is over its bound."""
        with self._lock:
            if self._stores_until_scan <= 0:
                self._sizes = {entry.name: _size(entry) for entry in _entries(self.root)}
                self._stores_until_scan = RESCAN_EVERY
            self._stores_until_scan -= 1
            self._sizes[key] = _size(self.root / key)
            total = sum(self._sizes.values())
            if total <= self.max_bytes:
                return
            by_last_use = sorted(_entries(self.root), key=_last_use_ns)
            for entry in by_last_use:
                if total <= self.max_bytes:
                    return
                shutil.rmtree(entry, ignore_errors=True)
                total -= self._sizes.pop(entry.name, 0)
                logger.info("evicted compile cache entry %s", entry.name)


def _entries(root: Path) -> list[Path]:
    return [entry for entry in root.iterdir() if not entry.name.startswith(".")]


def _last_use_ns(entry: Path) -> int:
    try:
        return entry.stat().st_mtime_ns
    except OSError:  # another process evicted it meanwhile
        return 0


def _touch(entry: Path) -> None:
    """Mark `entry` most recently used (our clock, not the file system's coarser one: uses must not tie)."""
    now_ns = time.time_ns()
    with contextlib.suppress(OSError):
        os.utime(entry, ns=(now_ns, now_ns))


def _size(entry: Path) -> int:
    return sum(path.stat().st_size for path in entry.rglob("*") if path.is_file())
