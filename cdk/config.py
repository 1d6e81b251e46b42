"""Deployment settings: cdk.json context (overridable with `cdk -c key=value`), validated once by pydantic.

Context values from the CLI arrive as strings, so lists also accept a comma-separated string and numbers
are coerced. Keys are flat camelCase so every one of them can be overridden with `-c`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from functions.settings import TAINT_PATTERN

# API Gateway REST gives up on an integration after 29 s (its default ceiling; raising it is a quota request).
API_INTEGRATION_TIMEOUT_S = 29
# The service must answer before API Gateway does, or the client gets API Gateway's bare 504 instead of
# ours (which carries the execution_id): one second of margin for the response to travel back.
SYNC_BUDGET_S = API_INTEGRATION_TIMEOUT_S - 1
# After a late answer the handler still deletes its Job; a few seconds more lets that finish instead of
# leaving an orphan for the sweeper. Costs nothing while requests end inside the budget.
LAMBDA_TIMEOUT_S = API_INTEGRATION_TIMEOUT_S + 3
# The asynchronous path (/executions, the state machine): the longest a run or one test case may take.
ASYNC_MAX_TIMEOUT_S = 900
# A workflow task is one Kubernetes API exchange (create a Job, read its state and log, delete it).
WORKFLOW_TASK_TIMEOUT_S = 30

# The log retention periods CloudWatch accepts that we offer (days -> aws_logs.RetentionDays member name).
RETENTION_DAY_NAMES: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
}


def _split_list(value: Any) -> Any:
    """`-c corsOrigins=a,b` arrives as a string; cdk.json gives a real list; '[...]' JSON is accepted too."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


def _split_map(value: Any) -> Any:
    """`-c runnerNodeSelector=a=b,c=d` arrives as a string; cdk.json gives a real object; '{...}' JSON too."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            return json.loads(stripped)
        pairs = [item.strip().partition("=") for item in stripped.split(",") if item.strip()]
        return {key.strip(): item.strip() for key, _, item in pairs}
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(_split_list)]
LabelMap = Annotated[dict[str, str], BeforeValidator(_split_map)]
Taint = Annotated[str, StringConstraints(pattern=TAINT_PATTERN)]
# A Kubernetes object name (DNS subdomain), e.g. a RuntimeClass.
ObjectName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]


class DeploySettings(BaseModel):
    """Everything that differs between deployments. Defaults suit a dev environment."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    environment: Literal["dev", "prod"] = "dev"
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # The existing EKS cluster whose API the Lambda calls (the stack does not create clusters).
    cluster_name: str = Field(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]*$")
    # "asset": `cdk deploy` builds the runner images and copies them into the stack's ECR repositories.
    # "registry": images were pushed by `make build-push-runners` into the repos `make create-ecr-repos`
    # made; the stack only points the Lambda at <repo>:<imageTag> (deploys without Docker).
    image_source: Literal["asset", "registry"] = "asset"
    image_tag: str = Field(default="", pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
    image_platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    auth_mode: Literal["api_key", "iam"] = "api_key"
    cors_origins: StrList = ()
    throttle_rate_limit: float = Field(default=10.0, gt=0)  # steady requests per second, per API stage
    throttle_burst_limit: int = Field(default=20, gt=0)
    quota_per_day: int = Field(default=10_000, gt=0)  # per API key (api_key mode)
    log_retention_days: int = 30
    # The Lambda mostly waits on the Kubernetes API; 512 MB buys enough CPU for a quick cold start.
    lambda_memory_mb: int = Field(default=512, ge=128, le=10_240)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_namespace: str = "CodeExec"
    service_name: str = "code-exec"
    # For clusters with a private endpoint: the Lambda runs in these subnets with these security groups
    # (they need a route to the cluster endpoint and to STS/EKS, e.g. VPC endpoints or NAT).
    subnet_ids: StrList = ()
    security_group_ids: StrList = ()
    alarm_email: str | None = None
    lambda_bundle_dir: str = "build/lambda"
    # Jobs the runner namespace admits at once (count/jobs.batch in k8s/base/resourcequota.yaml). Each
    # request holds at most one Job, so the Lambda's reserved concurrency is this: a burst is throttled at
    # the front door instead of filling the namespace (it must fit the account's Lambda concurrency quota).
    job_quota: int = Field(default=50, gt=0, le=1000)
    # Dedicated nodes for untrusted code: pods use this RuntimeClass (e.g. gvisor), select nodes with these
    # labels ("key=value,...") and tolerate these taints ("key=value:NoSchedule,..."). Every pod also selects
    # the architecture of imagePlatform.
    runtime_class_name: ObjectName | None = None
    runner_node_selector: LabelMap = Field(default_factory=dict)
    runner_tolerations: Annotated[tuple[Taint, ...], BeforeValidator(_split_list)] = ()
    # A regional WAF web ACL on the API stage with a rate-based rule: at most this many requests per client
    # IP in any 5 minutes (answered 429 beyond it). None: no WAF (stage throttling and the usage plan only).
    waf_rate_limit_per_5_min: int | None = Field(default=None, ge=10, le=2_000_000_000)

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in RETENTION_DAY_NAMES:
            raise ValueError(f"logRetentionDays must be one of {sorted(RETENTION_DAY_NAMES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeploySettings:
        if self.image_source == "registry" and not self.image_tag:
            raise ValueError("imageSource=registry needs imageTag (the tag `make build-push-runners` pushed)")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError("subnetIds and securityGroupIds go together (Lambda in a VPC needs both)")
        if "*" in self.cors_origins and self.auth_mode == "iam":
            raise ValueError("corsOrigins '*' is not allowed with IAM auth; list the origins")
        return self

    @property
    def node_selector(self) -> dict[str, str]:
        """The runner pods' node selector: the dedicated nodes' labels and the images' architecture."""
        return {**self.runner_node_selector, "kubernetes.io/arch": self.image_platform.removeprefix("linux/")}

    @property
    def namespace(self) -> str:
        """The Kubernetes namespace of the runner Jobs (k8s/overlays/<environment>)."""
        return f"runner-{self.environment}"

    @property
    def stack_name(self) -> str:
        return f"CodeExec-{self.environment}"

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @classmethod
    def from_context(cls, get: Any, keys: list[str] | None = None) -> DeploySettings:
        """Build from a context getter (`app.node.try_get_context`), reading every field's alias."""
        names = keys or [field.alias or name for name, field in cls.model_fields.items()]
        values = {name: get(name) for name in names}
        return cls.model_validate({key: value for key, value in values.items() if value is not None})
