"""The judge's normalisation, computed while a stream arrives: the same digest however the stream is cut."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.output_digest import NormalizedDigest, normalized_sha256


def reference(data: bytes) -> str:
    """What the judge means: each line without its trailing whitespace, no trailing empty lines."""
    lines = [line.rstrip() for line in data.split(b"\n")]
    return hashlib.sha256(b"\n".join(lines).rstrip(b"\n")).hexdigest()


def streamed(data: bytes, cuts: list[int]) -> str:
    digest = NormalizedDigest()
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    for start, stop in itertools.pairwise(bounds):
        digest.update(data[start:stop])
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(b"1 2  \r\n3\n\n\n", b"1 2\n3", id="trailing-spaces-and-lines"),
        pytest.param(b"\n\n  a", b"\n\n  a", id="leading-lines-and-indent-kept"),
        pytest.param(b" \t\n \n", b"", id="whitespace-only"),
        pytest.param(b"a\x0b\x0c\nb", b"a\nb", id="vertical-tab-and-form-feed"),
        pytest.param(b"a \rb", b"a \rb", id="spaces-inside-a-line-kept"),
    ],
)
def test_normalisation_table(output: bytes, expected: bytes) -> None:
    assert normalized_sha256(output) == hashlib.sha256(expected).hexdigest()


@given(
    data=st.binary(max_size=64)
    | st.lists(st.sampled_from([b"a", b"b", b" ", b"\t", b"\r", b"\n"])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=8),
)
def test_any_cut_of_any_stream_gives_the_judges_digest(data: bytes, cuts: list[int]) -> None:
    assert streamed(data, cuts) == reference(data)


def test_held_back_line_breaks_beyond_one_block_are_all_committed() -> None:
    # Given more line breaks than one block of them, held back until text follows
    data = b"a" + b"\n" * 200_000 + b" b"
    # Then the digest is the judge's
    assert streamed(data, [1, 70_000, 200_001]) == reference(data)
