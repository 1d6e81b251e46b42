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
# A run of line breaks, a run of other ASCII whitespace (what bytes.rstrip strips), or anything else.
_TOKENS = re.compile(rb"\n+|[ \t\r\x0b\x0c]+|[^ \t\n\r\x0b\x0c]+")
_SPACE = frozenset(b" \t\r\x0b\x0c")
_LINE_BREAK = ord("\n")


class NormalizedDigest:
    """SHA-256 of the normalised stream: line breaks and spaces are held back until text follows them."""

    __slots__ = ("_committed", "_with_breaks", "_with_space")

    def __init__(self) -> None:
        self._committed = hashlib.sha256()  # the normalised stream up to its last non-space byte
        self._with_breaks: hashlib._Hash | None = None  # + line breaks not yet followed by text
        self._with_space: hashlib._Hash | None = None  # + spaces of the current line not yet followed by text

    def update(self, chunk: bytes) -> None:
        for token in _TOKENS.finditer(chunk):
            text = token.group()
            if text[0] == _LINE_BREAK:  # trailing spaces of the line are dropped
                self._with_space = None
                if self._with_breaks is None:
                    self._with_breaks = self._committed.copy()
                self._with_breaks.update(text)
            elif text[0] in _SPACE:
                if self._with_space is None:
                    self._with_space = (self._with_breaks or self._committed).copy()
                self._with_space.update(text)
            else:
                committed = self._with_space or self._with_breaks or self._committed
                committed.update(text)
                self._committed, self._with_breaks, self._with_space = committed, None, None

    def hexdigest(self) -> str:
        return self._committed.hexdigest()


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
