"""One captured output stream, and the judge's normalisation of output, computed while it streams.

Standard library only, and imported by plain name nowhere but here: the pod's runner captures the program's
output with it, the local sandbox backend does the same outside its sandboxes, and the service's core
(`functions/core/output_digest.py` is this very file) hashes the expected outputs with it. One file, so the
normalisation that decides `wrong_answer` cannot differ between the program's side and the judge's.

The judge compares outputs ignoring trailing whitespace on each line and trailing blank lines. The digest
is the SHA-256 of the normalised stream, `b"\\n".join(line.rstrip() for line in lines)` without trailing
empty lines, computed incrementally in constant memory whatever the program prints (a stream of any length
is judged exactly, even beyond the bytes kept for the response).
"""

from __future__ import annotations

import hashlib
import re

TAIL_BYTES = 4096  # kept past the cap, so a memory error printed last is still recognised
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.rstrip strips
# Spaces at the end of a line, dropped with one substitution per chunk (C speed, whatever the line count).
_SPACES_BEFORE_BREAK = re.compile(rb"[ \t\r\x0b\x0c]+\n")
_BREAKS_BLOCK = b"\n" * 65536


class NormalizedDigest:
    """SHA-256 of the normalised stream: line breaks and spaces are held back until text follows them.

    Held back: `_breaks` line breaks, then spaces hashed in `_with_spaces` (a copy of the committed hash
    with those breaks and spaces added), so memory stays constant whatever the program prints.
    """

    __slots__ = ("_breaks", "_committed", "_with_spaces")

    def __init__(self) -> None:
        self._committed = hashlib.sha256()  # the normalised stream up to its last non-space byte
        self._breaks = 0
        self._with_spaces: hashlib._Hash | None = None

    def update(self, chunk: bytes) -> None:
        body = chunk.strip(_WHITESPACE)
        if not body:
            self._hold(chunk)
            return
        start = len(chunk) - len(chunk.lstrip(_WHITESPACE))
        self._hold(chunk[:start])
        self._commit_held()
        self._committed.update(_SPACES_BEFORE_BREAK.sub(b"\n", body))
        self._hold(chunk[start + len(body) :])

    def hexdigest(self) -> str:
        return self._committed.hexdigest()

    def _hold(self, whitespace: bytes) -> None:
        last_break = whitespace.rfind(b"\n")
        if last_break >= 0:
            self._breaks += whitespace.count(b"\n")
            self._with_spaces = None  # spaces before a line break are dropped
        spaces = whitespace[last_break + 1 :]
        if spaces:
            if self._with_spaces is None:
                self._with_spaces = self._committed.copy()
                self._add_breaks(self._with_spaces)
            self._with_spaces.update(spaces)

    def _commit_held(self) -> None:
        if self._with_spaces is not None:
            self._committed = self._with_spaces
        else:
            self._add_breaks(self._committed)
        self._breaks, self._with_spaces = 0, None

    def _add_breaks(self, digest: hashlib._Hash) -> None:
        remaining = self._breaks
        while remaining > 0:
            digest.update(_BREAKS_BLOCK[: min(remaining, len(_BREAKS_BLOCK))])
            remaining -= len(_BREAKS_BLOCK)


def normalized_sha256(data: bytes) -> str:
    """The digest of a whole output (the judge's side: an expected output)."""
    digest = NormalizedDigest()
    digest.update(data)
    return digest.hexdigest()


class Capture:
    """One output stream: its first `limit_bytes`, its last few KiB, its length and its normalised digest."""

    __slots__ = ("data", "digest", "limit_bytes", "tail", "total_bytes")

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.data = bytearray()
        self.tail = b""
        self.total_bytes = 0
        self.digest = NormalizedDigest()

    def add(self, chunk: bytes) -> None:
        room = self.limit_bytes - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.total_bytes += len(chunk)
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]
        self.digest.update(chunk)

    @property
    def truncated(self) -> bool:
        return self.total_bytes > len(self.data)
