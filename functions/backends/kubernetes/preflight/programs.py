"""The programs the preflight runs (or has admitted) as the service: each language's test program, and the
egress probe. Built into tasks and Jobs exactly as a request to the service would be."""

from __future__ import annotations

import base64
import json
import time

from kubernetes.client import V1Job

from functions.backends.kubernetes.job_builder import JobTemplate, build_job
from functions.core.languages import LanguageSpec, load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import PreparedRun, prepare_run
from functions.policies import sync_policy
from functions.settings import Settings

# The egress probe below is a Python program, run in that language's runner image.
PROBE_LANGUAGE = "python"
# Each connection attempt of the egress probe gives up after this long (a dropped SYN never answers).
PROBE_CONNECT_TIMEOUT_S = 3.0

# Tries a TCP connection to every target at once; prints {name: "open" | "blocked: <reason>"} as JSON.
_PROBE_SOURCE = """\
import json, socket, threading
TARGETS = json.loads({targets!r})
RESULTS = {{}}
def attempt(name, host, port):
    try:
        socket.create_connection((host, port), timeout={timeout_s}).close()
        RESULTS[name] = "open"
    except OSError as exc:
        RESULTS[name] = "blocked: " + (exc.strerror or type(exc).__name__)
threads = [threading.Thread(target=attempt, args=target) for target in TARGETS]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(json.dumps(RESULTS))
"""


def languages(settings: Settings) -> list[LanguageSpec]:
    return load_registry(settings.runners_dir).all()


def test_program_request(settings: Settings, language: LanguageSpec) -> ExecuteRequest:
    source = (settings.runners_dir / language.name / language.test_program).read_bytes()
    return ExecuteRequest(language=language.name, code=base64.b64encode(source).decode("ascii"))


def probe_request(targets: list[tuple[str, str, int]]) -> ExecuteRequest:
    """A program trying TCP to each (name, host, port); the run's time limit covers every attempt."""
    source = _PROBE_SOURCE.format(targets=json.dumps(targets), timeout_s=PROBE_CONNECT_TIMEOUT_S)
    return ExecuteRequest(
        language=PROBE_LANGUAGE, code=source, encoding="text", timeout=PROBE_CONNECT_TIMEOUT_S + 5
    )


def prepared_for(settings: Settings, request: ExecuteRequest) -> PreparedRun:
    """The task and the judging plan the service would make of `request`."""
    return prepare_run(request, load_registry(settings.runners_dir), sync_policy(settings))


def job_for(settings: Settings, request: ExecuteRequest) -> V1Job:
    """The Job the service would create for `request`."""
    task = prepared_for(settings, request).task
    return build_job(task, JobTemplate.from_settings(settings), now_s=time.time())
