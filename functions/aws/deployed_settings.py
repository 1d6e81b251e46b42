"""The settings of a deployed stack's service: the EXEC_* variables CloudFormation gave its execute Lambda.

The preflight checks a cluster for the service as deployed (`make preflight ENV=...`), so it reads the
namespace, images, RuntimeClass and node placement from there instead of from the operator's shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import boto3
import botocore.exceptions

from functions.aws.eks_auth import AWS_CLIENT_CONFIG
from functions.settings import Settings

# The stack output naming the execute Lambda (cdk/stack.py).
EXECUTE_FUNCTION_OUTPUT = "ExecuteFunctionName"
SETTINGS_PREFIX = "EXEC_"


class DeployedStackError(Exception):
    """The stack, its output or its function cannot be read: the message says which and why."""


def deployed_environment(stack_name: str, *, session: boto3.session.Session | None = None) -> dict[str, str]:
    """The EXEC_* variables of the stack's execute Lambda."""
    session = session or boto3.session.Session()
    try:
        stacks = session.client("cloudformation", config=AWS_CLIENT_CONFIG).describe_stacks(
            StackName=stack_name
        )
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks["Stacks"][0].get("Outputs", [])}
        if EXECUTE_FUNCTION_OUTPUT not in outputs:
            raise DeployedStackError(
                f"stack {stack_name} has no output {EXECUTE_FUNCTION_OUTPUT}: deploy this version first"
            )
        function = session.client("lambda", config=AWS_CLIENT_CONFIG).get_function_configuration(
            FunctionName=outputs[EXECUTE_FUNCTION_OUTPUT]
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise DeployedStackError(f"cannot read the deployed stack {stack_name}: {exc}") from exc
    variables = function.get("Environment", {}).get("Variables", {})
    return {key: value for key, value in variables.items() if key.startswith(SETTINGS_PREFIX)}


def settings_with(environment: Mapping[str, str]) -> Settings:
    """Settings as if `environment` were set in this process; EXEC_* variables already set here win."""
    added = [key for key in environment if key not in os.environ]
    try:
        os.environ.update({key: environment[key] for key in added})
        return Settings()
    finally:
        for key in added:
            os.environ.pop(key, None)
