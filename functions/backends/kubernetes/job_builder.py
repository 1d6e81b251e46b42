"""The one pure function that turns a runner task into a hardened `V1Job` (golden-tested).

No I/O and no clock: the caller passes `now_s`, so the same task and settings give the same Job.

The pod: for a compiled language the init container `compile` writes the source into the `box` emptyDir
and compiles it there, under the compile step's memory; then the container `runner` runs every case with
the box read-only and /tmp an emptyDir, under the run step's memory. An interpreted language has only
`runner`, which writes the source into the box itself. Each container's memory limit is its step's plus
the runner's own overhead, so it bounds every process of the step together. Each container gets only the
part of the task it needs: the compile phase never sees the cases' input, the run phase of a compiled
language never sees the source. Expected outputs are never in the task.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1Job,
    V1JobSpec,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecurityContext,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from functions.backends.kubernetes.constants import (
    BOX_MOUNT_PATH,
    BOX_VOLUME_NAME,
    COMPILE_CONTAINER,
    COMPILE_PHASE,
    COMPONENT_LABEL,
    COMPONENT_VALUE,
    DEADLINE_LABEL,
    EXECUTION_ID_LABEL,
    JOB_NAME_PREFIX,
    JUDGING_PLAN_ANNOTATION,
    LANGUAGE_LABEL,
    LANGUAGE_VERSION_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PHASE_ENV,
    RUN_PHASE,
    RUNNER_COMMAND,
    RUNNER_CONTAINER,
    STATE_MOUNT_PATH,
    STATE_SIZE_MB,
    STATE_VOLUME_NAME,
    TMP_MOUNT_PATH,
    TMP_VOLUME_NAME,
)
from functions.backends.kubernetes.deadlines import active_deadline_s
from functions.backends.kubernetes.task_env import task_env
from functions.core.judging import JudgingPlan
from functions.core.languages import LanguageSpec
from functions.core.protocol import RunnerTask, StepSpec, TaskCase
from functions.settings import TAINT_PATTERN, Settings

_DNS_LABEL_MAX = 63
# Pods of a Job get a 6-character suffix; a short Job name keeps every derived name valid.
_JOB_NAME_MAX = 52
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """The settings the Job builder reads, and nothing else."""

    namespace: str
    image_registry: str = ""
    image_tag: str = "latest"
    images: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "runner"
    runner_uid: int = 10001
    runner_gid: int = 10001
    cpu_request: str = "100m"
    cpu_limit: str = "500m"
    memory_request_mb: int = 128
    # The runner's own memory (Python, its buffers) on top of each step's; one container holds both.
    runner_overhead_mb: int = 32
    tmp_size_mb: int = 64
    box_size_mb: int = 256
    job_ttl_s: int = 300
    deadline_grace_s: float = 10.0
    runtime_class_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[str, ...] = ()  # taints in kubectl's syntax, see `toleration_for`

    @classmethod
    def from_settings(cls, settings: Settings) -> JobTemplate:
        return cls(
            namespace=settings.k8s_namespace,
            image_registry=settings.runner_image_registry,
            image_tag=settings.runner_image_tag,
            images=dict(settings.runner_images),
            service_account=settings.k8s_service_account,
            runner_uid=settings.runner_uid,
            runner_gid=settings.runner_gid,
            cpu_request=settings.k8s_cpu_request,
            cpu_limit=settings.k8s_cpu_limit,
            memory_request_mb=settings.k8s_memory_request_mb,
            runner_overhead_mb=settings.k8s_runner_overhead_mb,
            tmp_size_mb=settings.k8s_tmp_size_mb,
            box_size_mb=settings.k8s_box_size_mb,
            job_ttl_s=settings.k8s_job_ttl_s,
            deadline_grace_s=settings.k8s_deadline_grace_s,
            runtime_class_name=settings.k8s_runtime_class_name,
            node_selector=dict(settings.k8s_node_selector),
            tolerations=tuple(settings.k8s_tolerations),
        )


def image_for(language: LanguageSpec, template: JobTemplate) -> str:
    """`images[name]` when configured, else `<registry>/<language.image>:<tag>` (registry optional)."""
    override = template.images.get(language.name)
    if override:
        return override
    repository = (
        f"{template.image_registry.rstrip('/')}/{language.image}"
        if template.image_registry
        else (language.image)
    )
    return f"{repository}:{template.image_tag}"


def toleration_for(taint: str) -> V1Toleration:
    """`key=value:Effect` tolerates exactly that taint; `key:Effect` the key with any value."""
    match = re.fullmatch(TAINT_PATTERN, taint)
    if match is None:
        raise ValueError(f"{taint!r} is not a taint (key=value:Effect or key:Effect)")
    key, value, effect = match.group("key", "value", "effect")
    return V1Toleration(key=key, operator="Exists" if value is None else "Equal", value=value, effect=effect)


def job_name(execution_id: str) -> str:
    """A DNS-1123 label derived from the execution id, so a retried create finds the same Job."""
    slug = _NOT_DNS.sub("-", execution_id.lower()).strip("-")
    if not slug:
        raise ValueError(f"execution id {execution_id!r} has no usable character for a Job name")
    return (JOB_NAME_PREFIX + slug)[:_JOB_NAME_MAX].rstrip("-")


def label_value(text: str) -> str:
    """A valid label value: at most 63 of [a-z0-9-], starting and ending alphanumeric."""
    return _NOT_DNS.sub("-", text.lower()).strip("-")[:_DNS_LABEL_MAX].rstrip("-")


def container_memory_mb(step: StepSpec, template: JobTemplate) -> int:
    """A container's memory limit: its step's (every process of the step together) and the runner's own."""
    return step.memory_mb + template.runner_overhead_mb


def phase_tasks(task: RunnerTask) -> tuple[RunnerTask | None, RunnerTask]:
    """(what the compile container gets, what the runner container gets): each only what its phase needs."""
    if task.compile is None:
        return None, task
    compile_task = task.model_copy(update={"cases": (TaskCase(),)})  # the compiler never sees the input
    run_task = task.model_copy(update={"source_b64": ""})  # the program is what the compile left in /box
    return compile_task, run_task


def build_job(
    task: RunnerTask, template: JobTemplate, *, now_s: float, plan: JudgingPlan | None = None
) -> V1Job:
    """The Job of `task`; with `plan`, the Job alone says how to judge its run (the plan stays off the pod)."""
    name = job_name(task.execution_id)
    deadline_s = active_deadline_s(task, template.deadline_grace_s)
    # Past this instant nobody waits for the Job any more: the sweeper may delete it.
    orphan_after_s = math.ceil(now_s + deadline_s + template.deadline_grace_s)
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        COMPONENT_LABEL: COMPONENT_VALUE,
        LANGUAGE_LABEL: label_value(task.language.name),
        EXECUTION_ID_LABEL: label_value(task.execution_id),
    }
    annotations = {LANGUAGE_VERSION_ANNOTATION: task.language.version}
    job_annotations = dict(annotations)
    if plan is not None:
        job_annotations[JUDGING_PLAN_ANNOTATION] = plan.model_dump_json()
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            name=name,
            namespace=template.namespace,
            labels={**labels, DEADLINE_LABEL: str(orphan_after_s)},
            annotations=job_annotations,
        ),
        spec=V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=deadline_s,
            ttl_seconds_after_finished=template.job_ttl_s,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels, annotations=annotations),
                spec=_pod_spec(task, template),
            ),
        ),
    )


def _pod_spec(task: RunnerTask, template: JobTemplate) -> V1PodSpec:
    compile_task, run_task = phase_tasks(task)
    init_containers = None
    if compile_task is not None and compile_task.compile is not None:
        mounts = [_mount(BOX_VOLUME_NAME, BOX_MOUNT_PATH), _mount(STATE_VOLUME_NAME, STATE_MOUNT_PATH)]
        compile_container = _container(
            COMPILE_CONTAINER, COMPILE_PHASE, compile_task, compile_task.compile, mounts, template
        )
        init_containers = [compile_container]
    compiled = init_containers is not None
    mounts = [_mount(BOX_VOLUME_NAME, BOX_MOUNT_PATH, read_only=compiled)]
    if compiled:
        mounts.append(_mount(STATE_VOLUME_NAME, STATE_MOUNT_PATH, read_only=True))
    runner = _container(RUNNER_CONTAINER, RUN_PHASE, run_task, run_task.run, mounts, template)
    return V1PodSpec(
        restart_policy="Never",
        service_account_name=template.service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        host_network=False,
        host_pid=False,
        host_ipc=False,
        # Each container's processes see only their own: the runner is PID 1 of its container.
        share_process_namespace=False,
        runtime_class_name=template.runtime_class_name,
        # Only on the nodes set aside for untrusted code (and of the images' architecture), when configured.
        node_selector=dict(template.node_selector) or None,
        tolerations=[toleration_for(taint) for taint in template.tolerations] or None,
        # The runner writes its report before it exits; nothing needs a long grace on deletion.
        termination_grace_period_seconds=1,
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=template.runner_uid,
            run_as_group=template.runner_gid,
            fs_group=template.runner_gid,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        init_containers=init_containers,
        containers=[runner],
        volumes=_volumes(template, compiled=compiled),
    )


def _volumes(template: JobTemplate, *, compiled: bool) -> list[V1Volume]:
    sizes = {BOX_VOLUME_NAME: template.box_size_mb, TMP_VOLUME_NAME: template.tmp_size_mb}
    if compiled:
        sizes[STATE_VOLUME_NAME] = STATE_SIZE_MB
    return [
        V1Volume(name=name, empty_dir=V1EmptyDirVolumeSource(size_limit=f"{size_mb}Mi"))
        for name, size_mb in sizes.items()
    ]


def _mount(name: str, path: str, *, read_only: bool = False) -> V1VolumeMount:
    return V1VolumeMount(name=name, mount_path=path, read_only=read_only or None)


def _container(  # noqa: PLR0917 - one container: its name, phase, task, step, volumes and the template
    name: str,
    phase: str,
    task: RunnerTask,
    step: StepSpec,
    mounts: list[V1VolumeMount],
    template: JobTemplate,
) -> V1Container:
    memory_limit_mb = container_memory_mb(step, template)
    return V1Container(
        name=name,
        image=image_for(task.language, template),
        image_pull_policy="IfNotPresent",
        command=list(RUNNER_COMMAND),
        env=[V1EnvVar(name=PHASE_ENV, value=phase), *task_env(task)],
        resources=V1ResourceRequirements(
            requests={
                "cpu": template.cpu_request,
                "memory": f"{min(template.memory_request_mb, memory_limit_mb)}Mi",
            },
            limits={"cpu": template.cpu_limit, "memory": f"{memory_limit_mb}Mi"},
        ),
        security_context=V1SecurityContext(
            run_as_non_root=True,
            run_as_user=template.runner_uid,
            run_as_group=template.runner_gid,
            privileged=False,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=V1Capabilities(drop=["ALL"]),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=[*mounts, _mount(TMP_VOLUME_NAME, TMP_MOUNT_PATH)],
        termination_message_policy="FallbackToLogsOnError",
    )
