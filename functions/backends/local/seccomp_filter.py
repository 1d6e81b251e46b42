"""Placeholder: allow-all seccomp program until the real filter lands."""

from __future__ import annotations

import struct


def sandbox_filter() -> bytes:
    # BPF_RET | BPF_K, SECCOMP_RET_ALLOW
    return struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)
