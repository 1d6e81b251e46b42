"""A language's commands and limits for one request: the compile step and the run step, fully resolved.

Every rule about how a language runs lives here and in its language.json; supervisors (the local backend,
the pod's runner) execute the resolved steps and decide nothing.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from functions.core.languages import LanguageSpec
from functions.core.protocol import PROGRAM_DIR, StepSpec

# Headroom for a runtime's own mappings under RLIMIT_AS.
ADDRESS_SPACE_MARGIN_MB = 16
# The compile step's memory when a compiled language names none.
DEFAULT_COMPILE_MEMORY_MB = 512
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$")


def source_file_name(language: LanguageSpec, source: bytes) -> str:
    """The source's file name; a language may name it after the program (Java: its public class)."""
    if not language.source_name_pattern:
        return language.file_name
    match = re.search(language.source_name_pattern, source.decode("utf-8", errors="replace"))
    if match is None or not _SAFE_FILE_NAME.match(match.group(1)):
        return language.file_name
    return match.group(1) + PurePosixPath(language.file_name).suffix


def expand(argv: tuple[str, ...], *, file_name: str, memory_mb: int) -> tuple[str, ...]:
    """Fill `{file}` `{name}` `{dir}` `{memory_mb}` (language.json's placeholders)."""
    values = {
        "file": file_name,
        "name": PurePosixPath(file_name).stem,
        "dir": PROGRAM_DIR,
        "memory_mb": str(memory_mb),
    }
    return tuple(part.format_map(values) for part in argv)


def compile_step(
    language: LanguageSpec, *, file_name: str, memory_limit_mb: int, timeout_s: float
) -> StepSpec | None:
    if language.compile is None:
        return None
    memory_mb = language.compile_memory_mb or DEFAULT_COMPILE_MEMORY_MB
    return StepSpec(
        argv=expand(language.compile, file_name=file_name, memory_mb=memory_limit_mb),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        address_space_mb=memory_mb if language.limit_address_space else None,
    )


def run_step(
    language: LanguageSpec,
    *,
    file_name: str,
    memory_limit_mb: int,
    timeout_s: float,
    args: tuple[str, ...],
    merge_stderr: bool = False,
) -> StepSpec:
    """The program's own limit plus its runtime's overhead (a JVM's or node's own heap and code)."""
    memory_mb = memory_limit_mb + language.runtime_overhead_mb
    address_space_mb = memory_mb + ADDRESS_SPACE_MARGIN_MB if language.limit_address_space else None
    return StepSpec(
        argv=(*expand(language.run, file_name=file_name, memory_mb=memory_limit_mb), *args),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        address_space_mb=address_space_mb,
        merge_stderr=merge_stderr,
    )
