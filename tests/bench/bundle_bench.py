"""Lambda bundle benchmark: size (unzipped, zipped) and cold start from the bundle alone.

    make bench-bundle          (after `make build`; part of `make bench`)

Each sample is a fresh CPython 3.12 (the Lambda runtime's version) started with -S and PYTHONPATH=bundle:
`import_s` is the cold import of the handler module, `health_s` a cold import plus the first GET /health
(which builds the Kubernetes backend: EKS DescribeCluster answered by a local stub, STS token presigned
offline). Results are printed and written to tests/bench/bundle-results.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from functions.core.languages import load_registry
from functions.settings import DEFAULT_RUNNERS_DIR
from tests.bench.apigw_events import rest_proxy_event
from tests.bench.eks_stub import eks_stub

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("lambda_probe.py")
RESULTS_PATH = Path(__file__).with_name("bundle-results.json")
REGION = "eu-west-1"
CLUSTER = "code-exec-bench"


def load_builder() -> ModuleType:
    path = REPO_ROOT / "scripts" / "build_lambda_bundle.py"
    spec = importlib.util.spec_from_file_location("build_lambda_bundle", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zipped_size_bytes(bundle: Path) -> int:
    """What Lambda receives: the folder deflated the way CDK zips assets (level 6 is close enough)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(bundle))
    return buffer.tell()


def lambda_env(bundle: Path, eks_endpoint: str, tmp_dir: str) -> dict[str, str]:
    """The variables the stack gives the function (cdk/execute_function.py) and the runtime's own."""
    registry = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
    images = {
        spec.name: f"{registry}/{spec.image}:bench" for spec in load_registry(DEFAULT_RUNNERS_DIR).all()
    }
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(bundle),
        "LAMBDA_TASK_ROOT": str(bundle),
        "TMPDIR": tmp_dir,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_EKS": eks_endpoint,
        "POWERTOOLS_SERVICE_NAME": "code-exec",
        "POWERTOOLS_METRICS_NAMESPACE": "CodeExec",
        "LOG_LEVEL": "WARNING",
        "EXEC_BACKEND": "kubernetes",
        "EXEC_K8S_AUTH": "eks",
        "EXEC_EKS_CLUSTER_NAME": CLUSTER,
        "EXEC_K8S_NAMESPACE": "runner-dev",
        "EXEC_RUNNER_IMAGES": json.dumps(images),
    }


def probe(python: str, env: dict[str, str], *, import_only: bool) -> dict[str, Any]:
    event = "" if import_only else json.dumps(rest_proxy_event("GET", "/health"))
    argv = [python, "-S", "-B", str(PROBE), *(["--import-only"] if import_only else [])]
    result = subprocess.run(
        argv, input=event, capture_output=True, text=True, env=env, check=True, timeout=60
    )
    sample: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if not import_only and sample["response"]["statusCode"] != 200:
        raise RuntimeError(f"GET /health answered {sample['response']}")
    return sample


def main(argv: list[str] | None = None) -> int:
    builder = load_builder()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=builder.DEFAULT_OUT)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    python = builder.find_lambda_python(builder.LAMBDA_PYTHON)
    if python is None:
        raise SystemExit(f"no CPython {builder.LAMBDA_PYTHON} found to run the bundle with")
    with eks_stub(CLUSTER, REGION) as endpoint, tempfile.TemporaryDirectory() as tmp_dir:
        env = lambda_env(args.bundle, endpoint, tmp_dir)
        imports = [probe(python, env, import_only=True)["import_s"] for _ in range(args.samples)]
        healths = [probe(python, env, import_only=False) for _ in range(args.samples)]
    results = {
        "python": python,
        "bundle": str(args.bundle),
        "unzipped_mb": round(builder.bundle_size_bytes(args.bundle) / 1e6, 1),
        "zipped_mb": round(zipped_size_bytes(args.bundle) / 1e6, 1),
        "cold_import_s_median": round(statistics.median(imports), 3),
        "cold_import_s_min": round(min(imports), 3),
        "cold_health_s_median": round(statistics.median(h["import_s"] + h["invoke_s"] for h in healths), 3),
        "samples": args.samples,
    }
    for key, value in results.items():
        print(f"{key:>24}: {value}")
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
