"""Fixtures shared by every suite: API Gateway events, the handler called in-process, the local server."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from functions import observability, wiring
from functions.api.handler import lambda_handler
from functions.core.backend import ExecutionBackend, Toolchain
from functions.core.languages import LanguageSpec, load_registry
from functions.core.protocol import RunnerReport, RunnerTask
from functions.core.service import ExecutionService
from functions.devserver.server import LocalApiServer, LocalLambdaContext, build_event
from functions.settings import get_settings
from tests.http_support import ApiResponse, encode_body, from_proxy
from tests.report_factories import process, report

# The real Kubernetes control plane's session fixtures (cluster, cluster_namespace, admin_api_client,
# controller_api_client), for any suite; the cluster starts only when a test asks for one.
pytest_plugins = ["tests.cluster.fixtures"]

Body = bytes | str | dict[str, Any] | list[Any] | None


class EventFactory(Protocol):
    def __call__(
        self, method: str, path: str, body: Body = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]: ...


class Invoke(Protocol):
    def __call__(
        self, method: str, path: str, body: Body = None, *, headers: dict[str, str] | None = None
    ) -> ApiResponse: ...


@pytest.fixture
def api_event() -> EventFactory:
    """A real API Gateway REST proxy event, built exactly as the local server builds it."""

    def make(
        method: str, path: str, body: Body = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        data = encode_body(body)
        all_headers = {"Host": "localhost", "User-Agent": "pytest"}
        if data:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return build_event(
            method=method, target=path, headers=all_headers.items(), body=data, source_ip="127.0.0.1"
        )

    return make


@pytest.fixture
def invoke(api_event: EventFactory) -> Invoke:
    """Call `lambda_handler` in-process with a real proxy event; return the decoded proxy response."""

    def call(
        method: str, path: str, body: Body = None, *, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        event = api_event(method, path, body, headers=headers)
        context = LocalLambdaContext(request_id=event["requestContext"]["requestId"])
        return from_proxy(lambda_handler(event, context))

    return call


@pytest.fixture
def structured_logs(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """The service's JSON log lines written during the test (powertools keeps its own stdout handle)."""
    stream = io.StringIO()
    handler = observability.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    monkeypatch.setattr(handler, "stream", stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


@dataclass
class FakeBackend:
    """Records tasks; answers with `report`, or raises `error` when set."""

    name: str = "fake"
    report: RunnerReport = field(default_factory=lambda: report(process(stdout=b"hi\n", memory_kb=1)))
    error: Exception | None = None
    unavailable: set[str] = field(default_factory=set)  # languages whose toolchain is "missing"
    tasks: list[RunnerTask] = field(default_factory=list)
    budgets_s: list[float] = field(default_factory=list)

    def close(self) -> None:
        """Holds nothing."""

    def toolchain(self, language: LanguageSpec) -> Toolchain:
        return Toolchain(available=language.name not in self.unavailable, version=language.version + ".0")

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        self.tasks.append(task)
        self.budgets_s.append(budget_s)
        if self.error is not None:
            raise self.error
        return self.report


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """The handler's service, with the real registry and limits but a backend that runs nothing."""
    backend = FakeBackend()
    settings = get_settings()
    fake: ExecutionBackend = backend
    service = ExecutionService(
        backend=fake,
        registry=load_registry(settings.runners_dir),
        policy=wiring.sync_policy(settings),
        sync_budget_s=settings.sync_budget_s,
    )
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    return backend


@dataclass(frozen=True)
class RunningServer:
    url: str
    server: LocalApiServer


@pytest.fixture(scope="session")
def local_server() -> Iterator[RunningServer]:
    """The local HTTP server as `make run` builds it (real handler in worker processes, the dispatcher of
    asynchronous executions in this process) on 127.0.0.1, with a data dir of its own."""
    metrics_were_enabled = observability.metrics_enabled()
    observability.set_metrics_enabled(False)
    # Not pytest's tmp_path (mode 0700): the sandbox uids bind their boxes from under the data dir.
    data_dir = Path(tempfile.mkdtemp(prefix="code-exec-served-", dir="/tmp"))
    data_dir.chmod(0o711)
    with _environment("EXEC_DATA_DIR", str(data_dir)):  # the workers read it too
        settings = get_settings().model_copy(update={"data_dir": data_dir})
        server = LocalApiServer.for_settings(("127.0.0.1", 0), settings)
        server.warm()
        dispatcher = wiring.build_dispatcher(settings, wiring.get_workflow())
        dispatcher.start()
        thread = threading.Thread(target=server.serve_forever, name="local-api-server", daemon=True)
        thread.start()
        try:
            yield RunningServer(url=server.url, server=server)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            dispatcher.stop()
            observability.set_metrics_enabled(metrics_were_enabled)
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
