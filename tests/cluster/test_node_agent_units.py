"""Pure helpers of the node agent and its log endpoint (no cluster needed)."""

from __future__ import annotations

import pytest

from tests.cluster.node_logs import LogStore, _tail
from tests.cluster.node_pods import image_repository


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        pytest.param("code-exec-runner-python", "code-exec-runner-python", id="bare"),
        pytest.param("code-exec-runner-python:test", "code-exec-runner-python", id="tag"),
        pytest.param(
            "123.dkr.example/team/code-exec-runner-java:abc", "code-exec-runner-java", id="registry-path"
        ),
        pytest.param("localhost:5000/code-exec-runner-cpp:1", "code-exec-runner-cpp", id="registry-port"),
        pytest.param(
            "r.example/code-exec-runner-javascript@sha256:00ff", "code-exec-runner-javascript", id="digest"
        ),
    ],
)
def test_image_repository_is_the_last_path_segment_without_tag(image: str, repository: str) -> None:
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, b"a\nb\nc\n", id="whole"),
        pytest.param({"tailLines": ["2"]}, b"b\nc\n", id="tail-lines"),
        pytest.param({"tailLines": ["0"]}, b"", id="tail-zero"),
        pytest.param({"limitBytes": ["3"]}, b"a\nb", id="limit-bytes"),
    ],
)
def test_log_options(query: dict[str, list[str]], expected: bytes) -> None:
    assert _tail(b"a\nb\nc\n", query) == expected


def test_log_store_keeps_a_pod_log_until_the_pod_is_forgotten() -> None:
    # Given a finished container log
    store = LogStore()
    key = ("ns", "pod", "runner")
    store.open(key, pod_uid="uid-1")
    store.finish(key, b"report\n")

    # Then it is served, also to a follower, until the pod is forgotten
    assert store.read(key, follow=True) == b"report\n"
    store.forget_pod("ns", "uid-1")
    assert store.read(key, follow=False) is None
