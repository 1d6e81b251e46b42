"""CORS: the handler adds Access-Control-Allow-Origin for configured origins only.

The resolver is built once per container from the settings, so each case imports the handler in a fresh
interpreter with its own EXEC_CORS_ORIGINS, as a Lambda cold start would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.api.cors import CORS_ALLOW_HEADERS, cors_config
from functions.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from functions.devserver.server import LocalLambdaContext, build_event
event = build_event(method="GET", target="/health", headers=[("Origin", sys.argv[1])], body=b"",
                    source_ip="127.0.0.1")
response = __import__("functions.api.handler", fromlist=["x"]).lambda_handler(
    event, LocalLambdaContext(request_id="cors"))
headers = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
print(json.dumps({"status": response["statusCode"], "allow": headers.get("access-control-allow-origin")}))
"""


def _health_with_origin(origin: str, configured: list[str]) -> dict[str, object]:
    env = {
        **os.environ,
        "EXEC_CORS_ORIGINS": json.dumps(configured),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, origin],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("configured", "origin", "allowed"),
    [
        (["https://app.example.com"], "https://app.example.com", ["https://app.example.com"]),
        (
            ["https://a.example.com", "https://b.example.com"],
            "https://b.example.com",
            ["https://b.example.com"],
        ),
        (["https://app.example.com"], "https://evil.example.net", None),
        ([], "https://app.example.com", None),
    ],
    ids=["configured-origin", "second-origin", "other-origin", "cors-off"],
)
def test_allow_origin_only_for_configured_origins(
    configured: list[str], origin: str, allowed: list[str] | None
) -> None:
    # Given a container configured with some origins / When a browser calls GET /health
    result = _health_with_origin(origin, configured)
    # Then the allow-origin header names the caller's origin only when it is configured
    assert result["status"] == 200
    assert result["allow"] == allowed


def test_no_cors_config_without_origins() -> None:
    assert cors_config(Settings(cors_origins=[])) is None
    config = cors_config(Settings(cors_origins=["https://a.example.com"]))
    assert config is not None
    assert set(CORS_ALLOW_HEADERS) <= set(config.allow_headers)
