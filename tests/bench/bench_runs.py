"""`make bench`: what a fresh sandbox per run and the service cost on top of the bare toolchain, in one run.

For each language's hello world (its folder's test program), interleaved, N rounds:
  bare          the toolchain's own compile and run commands in a temp dir (the baseline)
  sandbox_cold  the local backend with every sandbox started on demand
  sandbox_warm  the local backend with sandboxes started ahead of demand (the default)
  http          the whole path: HTTP -> local server -> worker process -> handler -> warm sandboxes
Compiled languages compile every time (each round's source differs by trailing newlines, so the compile
cache misses); their cache is measured apart: the same source again (hit) against a new one (miss).
Throughput: interpreted languages' hello world with 1, 2 and 4 clients, through HTTP and bare, and beside
them `floor`: the bare program inside the cheapest bubblewrap sandbox with the same namespaces (no cgroup, no
seccomp, no service), the CPU any fresh-sandbox-per-run design pays on this machine.
Ratios against `bare` are what matter: absolute numbers move with the machine. Writes results.json and
ratios.png beside this file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from functions import observability
from functions.core.languages import LanguageSpec, load_registry
from functions.core.models import ExecuteRequest
from functions.core.service import ExecutionService
from functions.core.steps import expand, source_file_name
from functions.devserver.server import LocalApiServer
from functions.settings import Settings, get_settings
from functions.wiring import build_service
from tests.bench.chart import draw
from tests.bench.timing import Action, interleaved, summary, throughput

HERE = Path(__file__).parent
RESULTS_PATH = HERE / "results.json"
CHART_PATH = HERE / "ratios.png"
# The toolchains the sandbox resolves (its PATH): no pyenv shim, no host environment.
BARE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
THROUGHPUT_CLIENTS = (1, 2, 4)
MISS_OFFSET = 1000  # past every round the per-language measurement compiled


def variant(source: bytes, round_number: int) -> bytes:
    """The same program, a different file (trailing newlines are valid everywhere): a compile cache miss."""
    return source + b"\n" * (round_number + 2)


def floor_prefix(bwrap: Path, work_dir: str) -> list[str]:
    """The cheapest sandbox with the namespaces ours has: /usr read-only, the work dir, /proc, /dev."""
    return [
        str(bwrap), "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
        "--bind", work_dir, work_dir, "--chdir", work_dir, "--",
    ]  # fmt: skip


def bare(language: LanguageSpec, source: bytes, *, sandbox: Path | None = None) -> Action:
    """The toolchain's own commands in a temp dir; with `sandbox` (bubblewrap's path), inside floor_prefix."""

    def run(round_number: int) -> None:
        code = variant(source, round_number)
        file_name = source_file_name(language, code)
        with tempfile.TemporaryDirectory() as work_dir:
            (Path(work_dir) / file_name).write_bytes(code)
            prefix = [] if sandbox is None else floor_prefix(sandbox, work_dir)
            for argv in (language.compile, language.run):
                if argv is not None:
                    words = [word.replace("{dir}", work_dir) for word in argv]
                    command = [*prefix, *expand(tuple(words), file_name=file_name, memory_mb=256)]
                    env = {**BARE_ENV, **language.env}
                    subprocess.run(command, cwd=work_dir, check=True, capture_output=True, env=env)

    return run


def through_service(service: ExecutionService, language: LanguageSpec, source: bytes) -> Action:
    def run(round_number: int) -> None:
        request = ExecuteRequest(
            language=language.name, code=variant(source, round_number).decode(), encoding="text"
        )
        response = service.execute(request)
        assert response.status == "success", response

    return run


class HttpClients:
    """One keep-alive connection per thread to the local server."""

    def __init__(self, url: str) -> None:
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)
        self._local = threading.local()

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                self.host, self.port, timeout=120
            )
        connection.request("POST", "/execute", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload: dict[str, Any] = json.loads(response.read())
        assert response.status == 200, payload
        assert payload["status"] == "success", payload
        return payload

    def action(self, language: LanguageSpec, source: bytes, *, vary: bool = True, offset: int = 0) -> Action:
        """Post the program: the same source each time, or (vary) round `offset + n`'s variant of it."""

        def run(round_number: int) -> None:
            code = variant(source, offset + round_number) if vary else source
            self.post({"language": language.name, "code": code.decode(), "encoding": "text"})

        return run


def measure_languages(
    languages: list[LanguageSpec], services: dict[str, ExecutionService], clients: HttpClients, rounds: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for language in languages:
        source = (get_settings().runners_dir / language.name / language.test_program).read_bytes()
        actions: dict[str, Action] = {
            "bare": bare(language, source),
            **{name: through_service(service, language, source) for name, service in services.items()},
            "http": clients.action(language, source),
        }
        samples = interleaved(actions, rounds)
        medians = {name: summary(values) for name, values in samples.items()}
        base = medians["bare"]["median_ms"]
        results[language.name] = {
            "timings": medians,
            "ratio_to_bare": {name: round(value["median_ms"] / base, 2) for name, value in medians.items()},
        }
        print(f"{language.name:<11}", "  ".join(f"{n} {v['median_ms']:7.1f} ms" for n, v in medians.items()))
    return results


def measure_compile_cache(languages: list[LanguageSpec], clients: HttpClients, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for language in (language for language in languages if language.compiled):
        source = (get_settings().runners_dir / language.name / language.test_program).read_bytes()
        samples = interleaved(
            {
                # Variants no earlier measurement compiled: every one misses the cache.
                "miss": clients.action(language, source, offset=MISS_OFFSET),
                "hit": clients.action(language, source, vary=False),
            },
            rounds,
        )
        results[language.name] = {name: summary(values) for name, values in samples.items()}
        print(f"{language.name:<11} compile cache", results[language.name])
    return results


def measure_throughput(
    languages: list[LanguageSpec], clients: HttpClients, duration_s: float
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    bwrap = get_settings().local_bwrap_path
    for language in (language for language in languages if not language.compiled):
        source = (get_settings().runners_dir / language.name / language.test_program).read_bytes()
        rows = {}
        for count in THROUGHPUT_CLIENTS:
            bare_rate = throughput(bare(language, source), clients=count, duration_s=duration_s)
            floor_rate = throughput(
                bare(language, source, sandbox=bwrap), clients=count, duration_s=duration_s
            )
            http_rate = throughput(
                clients.action(language, source, vary=False), clients=count, duration_s=duration_s
            )
            rows[str(count)] = {
                "bare_per_s": bare_rate,
                "floor_per_s": floor_rate,
                "http_per_s": http_rate,
                "ratio": round(http_rate / bare_rate, 2),
                "floor_ratio": round(floor_rate / bare_rate, 2),
            }
        results[language.name] = rows
        print(f"{language.name:<11} throughput", rows)
    return results


def serving(settings: Settings) -> tuple[str, Callable[[], None]]:
    """Start `make run`'s server on a free loopback port: its URL and how to stop it."""
    server = LocalApiServer.for_settings(("127.0.0.1", 0), settings)
    server.warm()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return server.url, stop


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--throughput-seconds", type=float, default=3.0)
    parser.add_argument(
        "--language",
        action="append",
        dest="languages",
        help="only this language (repeatable); "
        "a partial run prints its figures and leaves results.json and the chart as they are",
    )
    arguments = parser.parse_args()
    observability.set_metrics_enabled(False)
    observability.quiet_logs()
    with fresh_data_dir():
        return bench(arguments.rounds, arguments.throughput_seconds, arguments.languages)


@contextmanager
def fresh_data_dir() -> Iterator[None]:
    """A data dir of this run's own (for the workers too, which read the environment): an empty compile cache."""
    data_dir = Path(tempfile.mkdtemp(prefix="code-exec-bench-"))
    data_dir.chmod(0o711)  # the sandboxes' uids traverse it to reach their boxes
    previous = os.environ.get("EXEC_DATA_DIR")
    os.environ["EXEC_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("EXEC_DATA_DIR", None)
        else:
            os.environ["EXEC_DATA_DIR"] = previous
        get_settings.cache_clear()
        shutil.rmtree(data_dir, ignore_errors=True)


def bench(rounds: int, throughput_seconds: float, only: list[str] | None = None) -> int:
    settings = get_settings()
    registry = load_registry(settings.runners_dir)
    languages = registry.all() if not only else [registry.get(name) for name in only]
    services = {
        "sandbox_cold": build_service(
            settings.model_copy(update={"local_warm_pool_size": 0, "local_compile_cache_mb": 0})
        ),
        "sandbox_warm": build_service(settings.model_copy(update={"local_compile_cache_mb": 0})),
    }
    url, stop = serving(settings)
    try:
        clients = HttpClients(url)
        results = {
            "rounds": rounds,
            "languages": measure_languages(languages, services, clients, rounds),
            "compile_cache": measure_compile_cache(languages, clients, rounds),
            "throughput": measure_throughput(languages, clients, throughput_seconds),
        }
    finally:
        stop()
        for service in services.values():
            service.backend.close()
    if only:
        print(json.dumps(results, indent=2))
        return 0
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    draw(results, CHART_PATH)
    print(f"wrote {RESULTS_PATH} and {CHART_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
