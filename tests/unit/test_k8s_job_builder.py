"""The Job builder: a golden Job, the task's trip through env chunks, names, images, limits."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from functions.backends.kubernetes.constants import (
    DEADLINE_LABEL,
    TASK_CHUNK_BYTES,
    TASK_CHUNK_ENV_PREFIX,
    TASK_CHUNKS_ENV,
)
from functions.backends.kubernetes.job_builder import (
    JobTemplate,
    active_deadline_s,
    build_job,
    decode_task_env,
    encode_task_chunks,
    image_for,
    job_name,
    label_value,
    toleration_for,
)
from functions.core.languages import LanguageSpec
from functions.core.protocol import RunnerTask, TaskCase, TaskLimits, b64encode
from functions.settings import Settings

NOW_S = 1_800_000_000.0
EXECUTION_ID = "0123456789abcdef0123456789abcdef"

PYTHON = LanguageSpec(
    name="python",
    display_name="Python",
    aliases=("py",),
    file_name="main.py",
    run=("python3", "{file}"),
    version_command=("python3", "--version"),
    version_pattern=r"Python (\S+)",
    version="3.11.7",
    image="code-exec-runner-python",
    runtime_overhead_mb=32,
    test_program="hello.py",
)

TEMPLATE = JobTemplate(namespace="runner-dev")


def task(**overrides: Any) -> RunnerTask:
    fields: dict[str, Any] = {
        "execution_id": EXECUTION_ID,
        "language": PYTHON,
        "source_b64": b64encode(b'print("Hello, World!")\n'),
        "cases": (TaskCase(),),
        "limits": TaskLimits(
            timeout_s=10,
            compile_timeout_s=30,
            total_budget_s=28,
            memory_limit_mb=256,
            output_limit_bytes=65536,
            max_processes=64,
            max_file_size_bytes=16 * 1024 * 1024,
        ),
    }
    fields.update(overrides)
    return RunnerTask(**fields)


def limits(**overrides: Any) -> TaskLimits:
    return task().limits.model_copy(update=overrides)


def as_dict(model: object) -> Any:
    """The JSON the client would send to the API server (camelCase, no nulls)."""
    return ApiClient().sanitize_for_serialization(model)  # type: ignore[no-untyped-call]


GOLDEN = Path(__file__).parent / "golden" / "k8s_job_python.json"
# The oldest Kubernetes minor we support (EKS standard support); the test cluster runs a newer one.
KUBERNETES_VERSION = "1.34"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _env(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def _without_task_chunks(job: dict[str, Any]) -> dict[str, Any]:
    """The golden file holds the Job's shape; the task bytes are checked by the round trip below."""
    job = copy.deepcopy(job)
    for item in job["spec"]["template"]["spec"]["containers"][0]["env"]:
        if re.fullmatch(rf"{TASK_CHUNK_ENV_PREFIX}\d+", item["name"]):
            item["value"] = f"<chunk {item['name'].removeprefix(TASK_CHUNK_ENV_PREFIX)}>"
    return job


def test_job_matches_the_golden_file() -> None:
    # Given a fixed task, template and clock
    # When the Job is built
    job = _without_task_chunks(as_dict(build_job(task(), TEMPLATE, now_s=NOW_S)))
    # Then it is exactly the reviewed golden Job (UPDATE_GOLDEN=1 rewrites the file after a deliberate change)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert job == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_built_job_is_a_valid_batch_v1_job() -> None:
    # Given the Job for a task with test cases, args, a runtime class and dedicated nodes
    template = JobTemplate(
        namespace="runner-prod",
        runtime_class_name="gvisor",
        image_registry="r.example",
        node_selector={"kubernetes.io/arch": "amd64"},
        tolerations=("code-exec/untrusted=true:NoSchedule",),
    )
    job = as_dict(
        build_job(
            task(cases=(TaskCase(stdin_b64=b64encode(b"1\n")),) * 3, args=("a", "b")), template, now_s=NOW_S
        )
    )
    # When validated against the Kubernetes schema (strict: unknown fields are errors)
    # Then it passes
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_job_hardening_is_complete() -> None:
    # Given a built Job
    spec = as_dict(build_job(task(), TEMPLATE, now_s=NOW_S))["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    # Then every control the restricted profile and the design ask for is present
    assert (spec["backoffLimit"], pod["restartPolicy"]) == (0, "Never")
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["hostNetwork"] is False
    assert pod["hostPID"] is False
    assert pod["hostIPC"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def test_task_round_trips_through_env_chunks() -> None:
    # Given a task far larger than one env chunk (300 KiB of stdin)
    big = task(cases=(TaskCase(stdin_b64=b64encode(os.urandom(300 * 1024))),))
    # When it is put into the pod's env
    env = _env(as_dict(build_job(big, TEMPLATE, now_s=NOW_S)))
    # Then it is cut into chunks that each fit, and their concatenation decodes to the same task
    count = int(env[TASK_CHUNKS_ENV])
    assert count == len(encode_task_chunks(big)) > 1
    assert all(len(env[f"{TASK_CHUNK_ENV_PREFIX}{index}"]) <= TASK_CHUNK_BYTES for index in range(count))
    assert decode_task_env(env) == big


def test_small_task_travels_in_one_chunk() -> None:
    env = _env(as_dict(build_job(task(), TEMPLATE, now_s=NOW_S)))
    assert env[TASK_CHUNKS_ENV] == "1"
    assert decode_task_env(env) == task()


@pytest.mark.parametrize(
    ("memory_limit_mb", "expected_limit", "expected_request"),
    [
        pytest.param(256, "288Mi", "128Mi", id="default-plus-runtime-overhead"),
        pytest.param(512, "544Mi", "128Mi", id="ceiling"),
        pytest.param(64, "96Mi", "96Mi", id="request-never-above-limit"),
    ],
)
def test_memory_limit_follows_the_request(
    memory_limit_mb: int, expected_limit: str, expected_request: str
) -> None:
    # Given a task with a memory limit (python adds 32 MiB runtime overhead in this fixture)
    built = build_job(task(limits=limits(memory_limit_mb=memory_limit_mb)), TEMPLATE, now_s=NOW_S)
    resources = as_dict(built)["spec"]["template"]["spec"]["containers"][0]["resources"]
    # Then the container's memory limit is the sandbox memory, the CPU seed values stay
    assert resources["limits"] == {"cpu": "500m", "memory": expected_limit}
    assert resources["requests"] == {"cpu": "100m", "memory": expected_request}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(JobTemplate(namespace="n"), "code-exec-runner-python:latest", id="bare-name"),
        pytest.param(
            JobTemplate(
                namespace="n", image_registry="123.dkr.ecr.us-east-1.amazonaws.com/", image_tag="abc123"
            ),
            "123.dkr.ecr.us-east-1.amazonaws.com/code-exec-runner-python:abc123",
            id="registry-and-tag",
        ),
        pytest.param(
            JobTemplate(namespace="n", image_registry="r", images={"python": "elsewhere/py@sha256:00"}),
            "elsewhere/py@sha256:00",
            id="per-language-override",
        ),
    ],
)
def test_image_per_language(template: JobTemplate, expected: str) -> None:
    assert image_for(PYTHON, template) == expected


@pytest.mark.parametrize(
    "execution_id",
    [
        pytest.param("0123456789abcdef0123456789abcdef", id="uuid-hex"),
        pytest.param("ABC_def.123", id="mixed-case-and-punctuation"),
        pytest.param("x" * 200, id="too-long"),
        pytest.param("--a--", id="edge-dashes"),
    ],
)
def test_job_names_are_dns_1123_labels(execution_id: str) -> None:
    name = job_name(execution_id)
    assert DNS_LABEL.match(name)
    assert len(name) <= 52  # leaves room for the pod-name suffix
    assert DNS_LABEL.match(label_value(execution_id))


def test_job_name_is_stable_for_an_execution() -> None:
    # A retried create must hit the same name (409) instead of starting a second run.
    assert job_name("abc") == job_name("abc") != job_name("abd")


def test_deadlines() -> None:
    # Given compile 30 s + budget 28 s + grace 10 s
    job = as_dict(build_job(task(), TEMPLATE, now_s=NOW_S))
    # Then the Job's own deadline covers the runner's limits, and the sweeper waits a grace longer
    assert active_deadline_s(task().limits, 10.0) == job["spec"]["activeDeadlineSeconds"] == 68
    assert job["metadata"]["labels"][DEADLINE_LABEL] == str(int(NOW_S) + 68 + 10)
    assert active_deadline_s(limits(compile_timeout_s=0.5, total_budget_s=0.2), 0.0) == 1


def test_runtime_class_is_optional() -> None:
    plain = as_dict(build_job(task(), TEMPLATE, now_s=NOW_S))["spec"]["template"]["spec"]
    sandboxed = as_dict(
        build_job(task(), JobTemplate(namespace="n", runtime_class_name="gvisor"), now_s=NOW_S)
    )
    assert "runtimeClassName" not in plain
    assert sandboxed["spec"]["template"]["spec"]["runtimeClassName"] == "gvisor"


def test_pods_go_only_to_the_dedicated_nodes_when_configured() -> None:
    # Given a template for a dedicated, tainted node group of the images' architecture
    template = JobTemplate(
        namespace="n",
        node_selector={"code-exec/untrusted": "true", "kubernetes.io/arch": "arm64"},
        tolerations=("code-exec/untrusted=true:NoSchedule", "gpu:NoExecute"),
    )
    # When a Job is built
    pod = as_dict(build_job(task(), template, now_s=NOW_S))["spec"]["template"]["spec"]
    plain = as_dict(build_job(task(), TEMPLATE, now_s=NOW_S))["spec"]["template"]["spec"]
    # Then its pods select those nodes and tolerate exactly their taints; without settings, neither is set
    assert pod["nodeSelector"] == {"code-exec/untrusted": "true", "kubernetes.io/arch": "arm64"}
    assert pod["tolerations"] == [
        {"key": "code-exec/untrusted", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
    ]
    assert "nodeSelector" not in plain
    assert "tolerations" not in plain


@pytest.mark.parametrize(
    "taint",
    ["no-effect", "key=value", "key=value:Sometimes", "=value:NoSchedule", "key=va lue:NoSchedule"],
)
def test_a_setting_that_is_no_taint_is_refused(taint: str) -> None:
    with pytest.raises(ValueError, match="should match pattern"):
        Settings(k8s_tolerations=[taint])
    with pytest.raises(ValueError, match="not a taint"):
        toleration_for(taint)


def test_template_from_settings() -> None:
    # Given settings with every Kubernetes knob changed
    settings = Settings(
        k8s_namespace="runner-prod",
        runner_image_registry="reg",
        runner_image_tag="t1",
        runner_images={"java": "j:1"},
        k8s_runtime_class_name="gvisor",
        k8s_service_account="sa",
        runner_uid=2000,
        runner_gid=3000,
        k8s_cpu_request="200m",
        k8s_cpu_limit="1",
        k8s_memory_request_mb=64,
        k8s_tmp_size_mb=32,
        k8s_job_ttl_s=60,
        k8s_deadline_grace_s=5,
        k8s_node_selector={"code-exec/untrusted": "true"},
        k8s_tolerations=["code-exec/untrusted=true:NoSchedule"],
    )
    # Then the template carries each of them
    assert JobTemplate.from_settings(settings) == JobTemplate(
        namespace="runner-prod",
        image_registry="reg",
        image_tag="t1",
        images={"java": "j:1"},
        service_account="sa",
        runner_uid=2000,
        runner_gid=3000,
        cpu_request="200m",
        cpu_limit="1",
        memory_request_mb=64,
        tmp_size_mb=32,
        job_ttl_s=60,
        deadline_grace_s=5,
        runtime_class_name="gvisor",
        node_selector={"code-exec/untrusted": "true"},
        tolerations=("code-exec/untrusted=true:NoSchedule",),
    )
