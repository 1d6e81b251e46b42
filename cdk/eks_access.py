"""EKS access for the service's IAM roles: an access entry into the controller group, and nothing broader.

Authorisation inside the cluster is Kubernetes RBAC: k8s/base binds a namespaced Role (jobs, pods,
pods/log) to the group CONTROLLER_GROUP, and the access entry puts the Lambda's role into that group. No EKS
access policy is associated (those are cluster-managed and broader than we need). In IAM the role may only
call eks:DescribeCluster (endpoint + CA) on this one cluster.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk.config import DeploySettings
from functions.backends.kubernetes.constants import CONTROLLER_GROUP


class EksAccess(Construct):
    """Call `grant(role)` for every role that creates runner Jobs (execute Lambda; later the workflow's)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings) -> None:
        super().__init__(scope, construct_id)
        self.cluster_name = settings.cluster_name
        self.cluster_arn = cdk.Stack.of(self).format_arn(
            service="eks", resource="cluster", resource_name=settings.cluster_name
        )
        self.entries: list[eks.CfnAccessEntry] = []

    def grant(self, construct_id: str, role: iam.IRole) -> eks.CfnAccessEntry:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["eks:DescribeCluster"], resources=[self.cluster_arn])
        )
        entry = eks.CfnAccessEntry(
            self,
            construct_id,
            cluster_name=self.cluster_name,
            principal_arn=role.role_arn,
            type="STANDARD",
            kubernetes_groups=[CONTROLLER_GROUP],
        )
        self.entries.append(entry)
        return entry
