"""What outlives a stack and for how long logs are kept, per environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

from cdk.config import RETENTION_DAY_NAMES, DeploySettings


def retention(settings: DeploySettings) -> logs.RetentionDays:
    return logs.RetentionDays[RETENTION_DAY_NAMES[settings.log_retention_days]]


def removal_policy(settings: DeploySettings) -> cdk.RemovalPolicy:
    """prod keeps logs and images after the stack is gone (audit, rollback); dev leaves nothing behind."""
    return cdk.RemovalPolicy.RETAIN if settings.is_prod else cdk.RemovalPolicy.DESTROY
