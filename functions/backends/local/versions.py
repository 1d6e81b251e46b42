"""Toolchain versions, measured once per toolchain binary rather than once per run.

The key is the identity of the binary the version command names, as the sandbox's PATH finds it (device,
inode, size, modification time): an upgraded toolchain is a new binary, so it is measured again.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from functions.core.languages import LanguageSpec

# What a probe prints is kept to this length for the pattern (it only needs the first lines).
PROBE_OUTPUT_CHARS = 4096
Identity = tuple[int, int, int, int]


def binary_identity(command: str, search_path: str) -> Identity | None:
    """(device, inode, size, mtime) of `command` as found on `search_path`; None when it is not there."""
    found = shutil.which(command, path=search_path)
    if found is None:
        return None
    try:
        info = Path(found).stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def parse_version(pattern: str, output: str) -> str:
    match = re.search(pattern, output[:PROBE_OUTPUT_CHARS])
    return match.group(1) if match else ""


class VersionCache:
    """`probe(language)` returns the version command's output; this caches what its pattern finds."""

    def __init__(self, probe: Callable[[LanguageSpec], str], *, search_path: str) -> None:
        self._probe = probe
        self._search_path = search_path
        self._versions: dict[tuple[str, Identity], str] = {}
        self._lock = threading.Lock()

    def identity(self, language: LanguageSpec) -> Identity | None:
        path = language.env.get("PATH", self._search_path)
        return binary_identity(language.version_command[0], path)

    def available(self, language: LanguageSpec) -> bool:
        return self.identity(language) is not None

    def toolchain(self, language: LanguageSpec) -> str:
        """What identifies the toolchain that would run `language` now: its binary and its version."""
        return f"{self.identity(language)}:{self.version(language)}"

    def version(self, language: LanguageSpec) -> str:
        """The toolchain's version ("" when it is missing or its probe says nothing we recognise)."""
        identity = self.identity(language)
        if identity is None:
            return ""
        key = (language.name, identity)
        with self._lock:
            cached = self._versions.get(key)
        if cached is not None:
            return cached
        version = parse_version(language.version_pattern, self._probe(language))
        with self._lock:
            self._versions[key] = version
        return version
