"""The Lambda bundle (`make build`): built without Docker for the Lambda platform, and it works.

The handler is imported from the bundle alone — a CPython 3.12 (the Lambda runtime's version) started
with -S and PYTHONPATH=<bundle>, so nothing from this machine's site-packages can stand in for a missing
dependency — and answers a real API Gateway REST event for GET /health, with the environment the
synthesized stack gives the function. EKS DescribeCluster (called when the backend is built) is answered
by a local stub through the SDK's AWS_ENDPOINT_URL_EKS; nothing leaves the machine.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from functions.core.languages import load_registry
from tests.bench.apigw_events import rest_proxy_event
from tests.bench.eks_stub import eks_stub
from tests.infrastructure.conftest import CLUSTER, REGION, REPO_ROOT, Synth, lambda_environment

pytestmark = pytest.mark.slow

LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
PROBE = REPO_ROOT / "tests" / "bench" / "lambda_probe.py"


def load_bundle_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_lambda_bundle", REPO_ROOT / "scripts" / "build_lambda_bundle.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = load_bundle_builder()


@pytest.fixture(scope="session")
def lambda_python() -> str:
    python = BUILDER.find_lambda_python(BUILDER.LAMBDA_PYTHON)
    if python is None:
        pytest.skip(f"no CPython {BUILDER.LAMBDA_PYTHON} on this machine to import the bundle with")
    return str(python)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make build` makes (same code, same dependency cache), in a private folder."""
    out = tmp_path_factory.mktemp("bundle") / "lambda"
    return Path(BUILDER.build(out, BUILDER.DEFAULT_PLATFORM, BUILDER.LAMBDA_PYTHON, compile_bytecode=True))


@pytest.fixture
def eks_endpoint() -> Iterator[str]:
    with eks_stub(CLUSTER, REGION) as endpoint:
        yield endpoint


def lambda_runtime_env(synth: Synth, bundle: Path, eks_endpoint: str, tmp_path: Path) -> dict[str, str]:
    """The function's configured variables plus what the Lambda runtime itself sets."""
    env = {key: value for key, value in lambda_environment(synth).items() if isinstance(value, str)}
    languages = load_registry(REPO_ROOT / "runners").all()
    env["EXEC_RUNNER_IMAGES"] = json.dumps(
        {
            language.name: f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{language.image}:t"
            for language in languages
        }
    )
    return {
        **env,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(bundle),
        "PYTHONPATH": str(bundle),
        "TMPDIR": str(tmp_path),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "code-exec-probe",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "probe",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_EKS": eks_endpoint,
    }


def test_bundle_holds_the_code_the_runners_and_platform_wheels(bundle: Path) -> None:
    assert (bundle / "functions" / "api" / "handler.py").is_file()
    assert (bundle / "runners" / "runner" / "runner.py").is_file()
    for language_file in (REPO_ROOT / "runners").glob("*/language.json"):
        assert (bundle / "runners" / language_file.parent.name / "language.json").is_file()
    native = [path.name for path in (bundle / "pydantic_core").glob("*.so")]
    assert native
    assert all("cpython-312-x86_64-linux-gnu" in name for name in native), native
    assert not list(bundle.rglob("__pycache__/*.cpython-311.pyc")), "bytecode must be 3.12's"


def test_bundle_fits_the_lambda_limit(bundle: Path) -> None:
    assert BUILDER.bundle_size_bytes(bundle) < LAMBDA_UNZIPPED_LIMIT_BYTES


def test_handler_from_the_bundle_answers_get_health(
    bundle: Path, lambda_python: str, dev_synth: Synth, eks_endpoint: str, tmp_path: Path
) -> None:
    # Given the bundle alone on the path of a Python 3.12 with the deployed function's environment
    env = lambda_runtime_env(dev_synth, bundle, eks_endpoint, tmp_path)
    event = rest_proxy_event("GET", "/health")
    # When the handler is cold-imported and receives API Gateway's event
    result = subprocess.run(
        [lambda_python, "-S", "-B", str(PROBE)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    # Then it answers 200 {"status": "healthy"} naming the Kubernetes backend
    assert result.returncode == 0, result.stderr[-4000:]
    response = json.loads(result.stdout.strip().splitlines()[-1])["response"]
    assert response["statusCode"] == 200, (response, result.stdout[-4000:])
    body = json.loads(response["body"])
    assert body["status"] == "healthy"
    assert body.get("backend") == "kubernetes"
