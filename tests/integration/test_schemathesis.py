"""schemathesis, a fuzzer no one here wrote, against the API as `make run` serves it: every check it has
(`--checks all`: status codes, schemas, headers, positive and negative data, undeclared methods), every phase
(the document's examples, boundary values, fuzzing), a fixed seed and a bounded number of examples so the run
is the same each time. Schema-valid requests really run in the local sandbox."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.http_support import http_call

pytestmark = [pytest.mark.sandbox]

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261127
MAX_EXAMPLES = 25
RUN_DEADLINE_S = 300  # a hung run fails the test instead of hanging the suite
RUN_OPTIONS = (
    *("--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES)),
    # The only DELETE, /executions/{id}, cancels: the execution stays readable (state CANCELLED), as the API
    # document says, so there is no deleted resource for the use-after-free check to look for.
    *("--exclude-checks", "use_after_free"),
    *("--no-color", "--report", "junit"),
)


def test_schemathesis_with_every_check_finds_nothing(local_server: RunningServer, tmp_path: Path) -> None:
    # When schemathesis runs every check and phase against the server
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
            *("run", f"{local_server.url}/openapi.json", *RUN_OPTIONS, "--report-dir", str(tmp_path)),
        ],
        cwd=REPO_ROOT,  # the config names its hooks file relative to the checkout
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
        check=False,
    )

    # Then it tested every operation and none failed
    output = completed.stdout[-8000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, output
    (report,) = tmp_path.glob("junit*.xml")
    suites = ET.parse(report).getroot()  # noqa: S314 - the report this run just wrote
    document = http_call(local_server.url, "GET", "/openapi.json").json()
    operations = sum(len(item) for item in document["paths"].values())
    # one test per operation, and one for the stateful phase (POST /executions links to GET and DELETE)
    assert (suites.get("tests"), suites.get("failures"), suites.get("errors")) == (
        str(operations + 1),
        "0",
        "0",
    )
    assert "generated" in completed.stdout
