"""With EXEC_BACKEND=kubernetes the service starts without the cluster: /health and /languages never need EKS,
and a run that cannot reach EKS or the API server is a 502 (backend_unavailable), never a 500.

Why neither moto nor a botocore Stubber here: both *answer* DescribeCluster, while the fault under test is an
endpoint that does not answer at all. botocore's per-service endpoint variables point EKS and STS at a closed
port on 127.0.0.1, so the backend meets the SDK's real connection error (EndpointConnectionError) and nothing
can reach AWS; the credentials are fake. The API-server case is a kubeconfig whose server is that closed port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions import wiring
from functions.core.service import ExecutionService
from functions.settings import Settings
from tests.conftest import Invoke

HELLO = {"language": "python", "code": 'print("hi")', "encoding": "text"}


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on: a connection to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def eks_unreachable(monkeypatch: pytest.MonkeyPatch, closed_port: int, tmp_path: Path) -> Settings:
    """Settings naming an EKS cluster whose AWS endpoints refuse every connection."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL_EKS": f"http://127.0.0.1:{closed_port}",
        "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{closed_port}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return Settings(backend="kubernetes", eks_cluster_name="code-exec", aws_region="eu-west-1")


@pytest.fixture
def apiserver_unreachable(closed_port: int, tmp_path: Path) -> Settings:
    """Settings whose kubeconfig names an API server that refuses every connection."""
    kubeconfig = tmp_path / "kubeconfig"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{closed_port}"}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    kubeconfig.write_text(yaml.safe_dump(document), encoding="utf-8")
    return Settings(
        backend="kubernetes", k8s_auth="kubeconfig", kubeconfig=kubeconfig, k8s_api_backoff_s=0.01
    )


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], ExecutionService]:
    """Build the service exactly as the Lambda does (`wiring.build_service`), once, and route the handler to it."""

    def install(settings: Settings) -> ExecutionService:
        service = wiring.build_service(settings)
        monkeypatch.setattr(wiring, "get_service", lambda: service)
        return service

    return install


def test_health_and_languages_answer_without_eks(
    eks_unreachable: Settings, serve: Callable[[Settings], ExecutionService], invoke: Invoke
) -> None:
    # Given the Lambda's configuration (an EKS cluster by name) while EKS cannot be reached
    serve(eks_unreachable)
    # When the cheap endpoints are called
    health = invoke("GET", "/health")
    languages = invoke("GET", "/languages")
    # Then they answer from the service alone
    assert (health.status, health.json()) == (200, {"status": "healthy", "backend": "kubernetes"})
    assert languages.status == 200
    assert {language["name"] for language in languages.json()} >= {"python", "javascript", "cpp", "java"}


@pytest.mark.parametrize("unreachable", ["eks_unreachable", "apiserver_unreachable"])
def test_a_run_that_cannot_reach_the_cluster_is_502(
    unreachable: str,
    request: pytest.FixtureRequest,
    serve: Callable[[Settings], ExecutionService],
    invoke: Invoke,
) -> None:
    # Given a service whose cluster (or the EKS API that locates it) refuses connections
    serve(request.getfixturevalue(unreachable))
    # When code is executed, twice (a failed connect is not remembered: the next run tries again)
    responses = [invoke("POST", "/execute", HELLO) for _ in range(2)]
    # Then each is a 502 with a sentence that leaks no endpoint
    for response in responses:
        body: dict[str, Any] = response.json()
        assert (response.status, body["error"]) == (502, "backend_unavailable"), body
        assert "127.0.0.1" not in body["message"]
