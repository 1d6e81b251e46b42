"""Names shared by the Job builder, the k8s/ manifests, the CDK access entry and the test node agent.

Kept free of imports so CDK code and test harnesses can import it without the Kubernetes client.
"""

from __future__ import annotations

# The Kubernetes group the controller identity (the Lambda's IAM role via an EKS access entry, or the test
# cluster's controller client certificate) belongs to. k8s/base/rbac.yaml binds the runner Role to it.
CONTROLLER_GROUP = "code-exec:controllers"

# Labels every Job and pod of ours carries; the sweeper and the NetworkPolicy select on them.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "code-exec"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT_VALUE = "runner"
LANGUAGE_LABEL = "code-exec/language"
EXECUTION_ID_LABEL = "code-exec/execution-id"
# Epoch seconds after which the Job is an orphan (its run can no longer be waited for by anyone).
DEADLINE_LABEL = "code-exec/deadline"
# Annotation: the language version, so a report can be built from the Job alone (Step Functions poll).
LANGUAGE_VERSION_ANNOTATION = "code-exec/language-version"
# Job annotation (never on the pod): the judging plan (expected outputs' digests), so a run can be judged
# from the Job alone.
JUDGING_PLAN_ANNOTATION = "code-exec/judging-plan"
# Set by the Job controller on every pod of a Job (Kubernetes >= 1.27).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

# A runner pod: for a compiled language the init container COMPILE_CONTAINER compiles into the box, then
# RUNNER_CONTAINER runs every case; both run the runner program every image places here, told which part
# is theirs by PHASE_ENV. runners/runner names the same paths and variables (a unit test keeps them equal).
RUNNER_CONTAINER = "runner"
COMPILE_CONTAINER = "compile"
RUNNER_COMMAND = ("python3", "/opt/runner/runner.py")
PHASE_ENV = "RUNNER_PHASE"
COMPILE_PHASE = "compile"
RUN_PHASE = "run"
BOX_VOLUME_NAME = "box"
BOX_MOUNT_PATH = "/box"  # functions.core.protocol.PROGRAM_DIR: the program's files
TMP_VOLUME_NAME = "tmp"
TMP_MOUNT_PATH = "/tmp"  # noqa: S108 - the program's working directory, an emptyDir with a size limit
STATE_VOLUME_NAME = "runner-state"
STATE_MOUNT_PATH = "/run/code-exec"  # when the task's budget began, from the compile phase to the run phase
STATE_SIZE_MB = 1

# How the task travels in the pod's env (runners/runner reads the same names).
TASK_CHUNKS_ENV = "RUNNER_TASK_CHUNKS"
TASK_CHUNK_ENV_PREFIX = "RUNNER_TASK_"
# Kubernetes keeps each env value well under 128 KiB; 96 KiB chunks leave room for the rest of the spec.
TASK_CHUNK_BYTES = 96 * 1024

JOB_NAME_PREFIX = "exec-"

# Everything the service does in the runner namespace, as (API group, resource, verb): k8s/base/rbac.yaml
# grants exactly this and the preflight checks the controller group holds exactly this.
CONTROLLER_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    *(("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")),
    *(("", "pods", verb) for verb in ("get", "list", "watch")),
    ("", "pods/log", "get"),
)

# The ConfigMap in the runner namespace holding the admission policy's parameters
# (k8s/base/admission-policy.yaml): imagePrefix, serviceAccountName, runtimeClassName.
ADMISSION_PARAMS_CONFIGMAP = "runner-admission"
