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
    JUDGING_PLAN_ANNOTATION,
    TASK_CHUNK_BYTES,
    TASK_CHUNK_ENV_PREFIX,
    TASK_CHUNKS_ENV,
)
from functions.backends.kubernetes.deadlines import active_deadline_s, container_times_s
from functions.backends.kubernetes.job_builder import (
    JobTemplate,
    build_job,
    image_for,
    job_name,
    label_value,
    phase_tasks,
    toleration_for,
)
from functions.backends.kubernetes.task_env import decode_task_env, encode_task_chunks
from functions.core.judging import JudgingPlan
from functions.core.languages import LanguageSpec
from functions.core.protocol import RunnerTask, TaskCase, TaskLimits, b64encode
from functions.core.steps import compile_step, run_step
from functions.settings import Settings

NOW_S = 1_800_000_000.0
EXECUTION_ID = "0123456789abcdef0123456789abcdef"

PYTHON = LanguageSpec(
    name="python",
    display_name="Python",
    aliases=("py",),
    file_name="main.py",
    run=("python3", "{dir}/{file}"),
    version_command=("python3", "--version"),
    version_pattern=r"Python (\S+)",
    version="3.11.7",
    runtime_overhead_mb=16,
)
CPP = LanguageSpec(
    name="cpp",
    display_name="C++",
    file_name="main.cpp",
    compile=("g++", "-O2", "-o", "main", "{file}"),
    run=("{dir}/main",),
    version_command=("g++", "--version"),
    version_pattern=r"(\d+\.\d+\.\d+)",
    version="12",
    compile_memory_mb=512,
    runtime_overhead_mb=8,
)

TEMPLATE = JobTemplate(namespace="runner-dev")


def task(
    language: LanguageSpec = PYTHON,
    *,
    cases: tuple[TaskCase, ...] = (TaskCase(),),
    memory_limit_mb: int = 256,
    timeout_s: float = 10,
    total_budget_s: float = 28,
    args: tuple[str, ...] = (),
) -> RunnerTask:
    """A task as the core resolves it (functions/core/steps.py)."""
    file_name = language.file_name
    return RunnerTask(
        execution_id=EXECUTION_ID,
        language=language,
        source_file_name=file_name,
        source_b64=b64encode(b'print("Hello, World!")\n'),
        compile=compile_step(language, file_name=file_name, memory_limit_mb=memory_limit_mb, timeout_s=30),
        run=run_step(
            language, file_name=file_name, memory_limit_mb=memory_limit_mb, timeout_s=timeout_s, args=args
        ),
        cases=cases,
        limits=TaskLimits(
            total_budget_s=total_budget_s,
            output_limit_bytes=65536,
            max_processes=64,
            max_file_size_bytes=16 * 1024 * 1024,
        ),
    )


def as_dict(model: object) -> Any:
    """The JSON the client would send to the API server (camelCase, no nulls)."""
    return ApiClient().sanitize_for_serialization(model)  # type: ignore[no-untyped-call]


GOLDEN = {
    "python": Path(__file__).parent / "golden" / "k8s_job_python.json",
    "cpp": Path(__file__).parent / "golden" / "k8s_job_cpp.json",
}
# The oldest Kubernetes minor we support (EKS standard support); the test cluster runs a newer one.
KUBERNETES_VERSION = "1.34"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _containers(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = job["spec"]["template"]["spec"]
    return {
        container["name"]: container for container in [*pod.get("initContainers", []), *pod["containers"]]
    }


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def _without_task_chunks(job: dict[str, Any]) -> dict[str, Any]:
    """The golden file holds the Job's shape; the task bytes are checked by the round trips below."""
    job = copy.deepcopy(job)
    for container in _containers(job).values():
        for item in container["env"]:
            if re.fullmatch(rf"{TASK_CHUNK_ENV_PREFIX}\d+", item["name"]):
                item["value"] = f"<chunk {item['name'].removeprefix(TASK_CHUNK_ENV_PREFIX)}>"
    return job


@pytest.mark.parametrize("language", [PYTHON, CPP], ids=lambda language: language.name)
def test_job_matches_the_golden_file(language: LanguageSpec) -> None:
    # Given a fixed task, template and clock
    # When the Job is built
    job = _without_task_chunks(as_dict(build_job(task(language), TEMPLATE, now_s=NOW_S)))
    # Then it is exactly the reviewed golden Job (UPDATE_GOLDEN=1 rewrites the file after a deliberate change)
    golden = GOLDEN[language.name]
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert job == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", [PYTHON, CPP], ids=lambda language: language.name)
def test_built_job_is_a_valid_batch_v1_job(language: LanguageSpec) -> None:
    # Given the Job for a task with test cases, args, a runtime class, dedicated nodes and a judging plan
    template = JobTemplate(
        namespace="runner-prod",
        runtime_class_name="gvisor",
        image_registry="r.example",
        node_selector={"kubernetes.io/arch": "amd64"},
        tolerations=("code-exec/untrusted=true:NoSchedule",),
    )
    built = task(language, cases=(TaskCase(stdin_b64=b64encode(b"1\n")),) * 3, args=("a", "b"))
    job = as_dict(build_job(built, template, now_s=NOW_S, plan=plan_for(built)))
    # When validated against the Kubernetes schema (strict: unknown fields are errors)
    # Then it passes
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def plan_for(built: RunnerTask) -> JudgingPlan:
    return JudgingPlan(
        execution_id=built.execution_id,
        language=built.language.name,
        compiled=built.compile is not None,
        timeout_s=built.run.timeout_s,
        compile_timeout_s=30,
        output_limit_bytes=built.limits.output_limit_bytes,
        expected_sha256=("0" * 64,) * len(built.cases),
    )


@pytest.mark.parametrize("language", [PYTHON, CPP], ids=lambda language: language.name)
def test_job_hardening_is_complete(language: LanguageSpec) -> None:
    # Given a built Job
    spec = as_dict(build_job(task(language), TEMPLATE, now_s=NOW_S))["spec"]
    pod = spec["template"]["spec"]
    # Then every control the restricted profile and the design ask for is present, in every container
    assert (spec["backoffLimit"], pod["restartPolicy"]) == (0, "Never")
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert (pod["hostNetwork"], pod["hostPID"], pod["hostIPC"], pod["shareProcessNamespace"]) == (False,) * 4
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in _containers({"spec": spec}).values():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_an_interpreted_language_has_one_container_writing_its_own_box() -> None:
    pod = as_dict(build_job(task(PYTHON), TEMPLATE, now_s=NOW_S))["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    (runner,) = pod["containers"]
    assert _env(runner)["RUNNER_PHASE"] == "run"
    assert {"name": "box", "mountPath": "/box"} in runner["volumeMounts"]
    assert [volume["name"] for volume in pod["volumes"]] == ["box", "tmp"]


def test_a_compiled_language_compiles_in_an_init_container_and_runs_from_a_read_only_box() -> None:
    job = as_dict(build_job(task(CPP), TEMPLATE, now_s=NOW_S))
    containers = _containers(job)
    assert list(containers) == ["compile", "runner"]
    assert (_env(containers["compile"])["RUNNER_PHASE"], _env(containers["runner"])["RUNNER_PHASE"]) == (
        "compile",
        "run",
    )
    assert {"name": "box", "mountPath": "/box"} in containers["compile"]["volumeMounts"]
    assert {"name": "box", "mountPath": "/box", "readOnly": True} in containers["runner"]["volumeMounts"]
    assert {"name": "runner-state", "mountPath": "/run/code-exec", "readOnly": True} in containers["runner"][
        "volumeMounts"
    ]


def test_each_container_gets_only_the_task_its_phase_needs() -> None:
    # Given a compiled language's task with input
    built = task(CPP, cases=(TaskCase(stdin_b64=b64encode(b"secret input")),))
    containers = _containers(as_dict(build_job(built, TEMPLATE, now_s=NOW_S)))
    compile_task = decode_task_env(_env(containers["compile"]))
    run_task = decode_task_env(_env(containers["runner"]))
    # Then the compiler never sees the input, the run phase never the source, and nothing else differs
    assert compile_task.cases == (TaskCase(),)
    assert run_task.source_b64 == ""
    assert (compile_task, run_task) == phase_tasks(built)
    assert run_task.model_copy(update={"source_b64": built.source_b64}) == built


def test_task_round_trips_through_env_chunks() -> None:
    # Given a task far larger than one env chunk (300 KiB of stdin)
    big = task(cases=(TaskCase(stdin_b64=b64encode(os.urandom(300 * 1024))),))
    # When it is put into the pod's env
    env = _env(_containers(as_dict(build_job(big, TEMPLATE, now_s=NOW_S)))["runner"])
    # Then it is cut into chunks that each fit, and their concatenation decodes to the same task
    count = int(env[TASK_CHUNKS_ENV])
    assert count == len(encode_task_chunks(big)) > 1
    assert all(len(env[f"{TASK_CHUNK_ENV_PREFIX}{index}"]) <= TASK_CHUNK_BYTES for index in range(count))
    assert decode_task_env(env) == big


def test_small_task_travels_in_one_chunk() -> None:
    env = _env(_containers(as_dict(build_job(task(), TEMPLATE, now_s=NOW_S)))["runner"])
    assert env[TASK_CHUNKS_ENV] == "1"
    assert decode_task_env(env) == task()


@pytest.mark.parametrize(
    ("language", "memory_limit_mb", "limits"),
    [
        pytest.param(PYTHON, 256, {"runner": "304Mi"}, id="python-default"),
        pytest.param(PYTHON, 64, {"runner": "112Mi"}, id="python-small"),
        pytest.param(CPP, 16, {"compile": "544Mi", "runner": "56Mi"}, id="cpp-compile-keeps-its-own"),
    ],
)
def test_each_container_is_limited_to_its_step_and_the_runner(
    language: LanguageSpec, memory_limit_mb: int, limits: dict[str, str]
) -> None:
    # Given a task's memory limit (the run step adds the runtime's overhead; compile has its own)
    containers = _containers(
        as_dict(build_job(task(language, memory_limit_mb=memory_limit_mb), TEMPLATE, now_s=NOW_S))
    )
    # Then each container's limit is its step's memory plus the runner's 32 MiB, covering every process
    assert {
        name: container["resources"]["limits"]["memory"] for name, container in containers.items()
    } == limits
    for container in containers.values():
        requested = int(container["resources"]["requests"]["memory"].removesuffix("Mi"))
        assert requested <= min(128, int(container["resources"]["limits"]["memory"].removesuffix("Mi")))


def test_the_judging_plan_is_on_the_job_and_never_on_the_pod() -> None:
    built = task()
    job = as_dict(build_job(built, TEMPLATE, now_s=NOW_S, plan=plan_for(built)))
    assert JudgingPlan.model_validate_json(
        job["metadata"]["annotations"][JUDGING_PLAN_ANNOTATION]
    ) == plan_for(built)
    assert JUDGING_PLAN_ANNOTATION not in job["spec"]["template"]["metadata"]["annotations"]


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


@pytest.mark.parametrize(
    ("built", "times", "deadline_s"),
    [
        pytest.param(task(timeout_s=10), {"runner": 10}, 20, id="one-case"),
        pytest.param(task(cases=(TaskCase(),) * 2, timeout_s=2), {"runner": 4}, 14, id="cases-x-timeout"),
        pytest.param(
            task(cases=(TaskCase(),) * 5, timeout_s=10), {"runner": 28}, 38, id="capped-by-the-budget"
        ),
        pytest.param(task(CPP, timeout_s=1), {"compile": 28, "runner": 1}, 38, id="compile-and-run"),
        pytest.param(
            task(CPP, timeout_s=1, total_budget_s=40), {"compile": 30, "runner": 1}, 41, id="compile"
        ),
    ],
)
def test_deadlines_are_the_runs_own_time(built: RunnerTask, times: dict[str, float], deadline_s: int) -> None:
    # Given a task's own limits / When its Job is built
    job = as_dict(build_job(built, TEMPLATE, now_s=NOW_S))
    # Then each container's time is its step's, the Job's deadline their sum (within the budget) + 10 s of
    # grace, and the sweeper waits a grace longer
    assert container_times_s(built) == times
    assert active_deadline_s(built, 10.0) == job["spec"]["activeDeadlineSeconds"] == deadline_s
    assert job["metadata"]["labels"][DEADLINE_LABEL] == str(int(NOW_S) + deadline_s + 10)


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
        k8s_runner_overhead_mb=48,
        k8s_tmp_size_mb=32,
        k8s_box_size_mb=100,
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
        runner_overhead_mb=48,
        tmp_size_mb=32,
        box_size_mb=100,
        job_ttl_s=60,
        deadline_grace_s=5,
        runtime_class_name="gvisor",
        node_selector={"code-exec/untrusted": "true"},
        tolerations=("code-exec/untrusted=true:NoSchedule",),
    )
